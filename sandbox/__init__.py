"""A local Bitrix24 for development, demos, tests and benchmarks. See README.md."""

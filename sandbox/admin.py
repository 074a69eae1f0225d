"""Placeholder: filled in by its owner (see core.py)."""
from flask import Blueprint

bp = Blueprint("admin", __name__)

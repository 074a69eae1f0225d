"""Placeholder: filled in by its owner (see core.py)."""
from flask import Blueprint

bp = Blueprint("rest", __name__)

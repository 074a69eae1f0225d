"""Placeholder: filled in by its owner (see core.py)."""
from flask import Blueprint

bp = Blueprint("oauth", __name__)

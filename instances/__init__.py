"""The bundled instance library, installed as the package data ``pdopt.library`` (see pdopt/io/library.py)."""

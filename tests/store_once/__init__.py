"""Tests of save_model (src/weighttie/store_once.py): each tied variable stored once."""

"""Build tools for tests and demos (not used by the app at run time): the random-weight
miniature models of the tiny profile (tiny_models, `manage.py make_tiny_models`)."""

"""Models: the registry of model kinds (`kinds`), bundle files (`bundle`), the runtime every
other part of the engine uses (`runtime`), and one module per kind (`vae`).

Importing this package costs nothing: torch loads with the first kind that is used.
"""

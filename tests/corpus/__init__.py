"""Hostile inputs that once broke Sample Tool, made on demand so they stay fixed: crafted audio
files and names (`bad_files`), damaged catalogues (`damaged_catalogues`) and hostile model
bundles (`hostile_bundles`). Each maker writes into a folder the test gives it."""

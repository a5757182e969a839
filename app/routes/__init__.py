"""One blueprint per area; blueprints never import each other."""

"""Database layer: typed models, the engine factory, the embedded server, migrations."""

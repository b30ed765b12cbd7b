"""SQL files shipped with ops: migrations/, views/ and queries/ (loaded with importlib.resources)."""

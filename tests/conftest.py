import os

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


def load_script(name: str):
  """Import `scripts/<name>.py` as a module (scripts are not a package)."""
  import importlib.util

  path = os.path.join(os.path.dirname(__file__), "..", "scripts", f"{name}.py")
  spec = importlib.util.spec_from_file_location(name, path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod

"""Solutions to the exercises of notebook 11 (verifying against PyTorch)."""

# Exercise 1: the storage class names the dtype (torch.HalfStorage, torch.BoolStorage), as FloatStorage does
# for float32; TinyCheckpointReader needs their dtypes (float16, bool) in its table of storages.
STORAGE_CLASSES = {"HalfStorage", "BoolStorage"}

# Exercise 2: the allow-list check sees the module and name the pickle asks for. Protocol-0/2 pickles written
# by Python 2 name `__builtin__`; pickle's compatibility mapping (fix_imports) renames it to `builtins`
# before find_class is called, so the report is the same for both spellings.
GLOBAL_NAMES = {"eval": "builtins.eval", "Popen": "subprocess.Popen"}

CHECKED = {
    "check_11_storage_classes": (STORAGE_CLASSES,),
    "check_11_global_names": (GLOBAL_NAMES,),
}

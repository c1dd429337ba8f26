"""Code fingerprints: which files each component's key covers, what changes it, what does not."""
import os
import shutil
import time


from pipeline.fingerprint import PROJECT_ROOT, code_fingerprint, source_files
from pipeline.pipeline import COMPONENT_CODE


def test_each_component_covers_its_own_code_and_what_it_imports():
    transform = source_files(["components.transform.preprocessing"])
    assert "components/transform/preprocessing.py" in transform
    assert "components/transform/options.py" in transform  # imported by preprocessing
    assert "components/__init__.py" in transform and "components/transform/__init__.py" in transform
    assert not any(path.startswith("components/trainer/") for path in transform)
    trainer = source_files(["components.trainer.run_fn"])
    assert {"components/trainer/run_fn.py", "components/trainer/session.py", "components/trainer/clipping.py",
            "components/trainer/loop.py", "components/trainer/telemetry.py"} <= set(trainer)
    assert "components/transform/preprocessing.py" in trainer  # the Trainer reads its output key names
    assert not any(path.startswith(("components/evaluator/", "components/validation/")) for path in trainer)
    example_gen = source_files(["components.example_gen.component"])
    assert {"components/example_gen/readers.py", "components/example_gen/records.py"} <= set(example_gen)
    assert not any(path.startswith("components/trainer/") for path in example_gen)


def _copy_project(destination):
    for folder in ("components", "schemas"):
        shutil.copytree(os.path.join(PROJECT_ROOT, folder), os.path.join(destination, folder),
                        ignore=shutil.ignore_patterns("__pycache__"))
    return str(destination)


def test_identical_in_two_checkouts_in_different_folders(tmp_path):
    a, b = _copy_project(tmp_path / "a"), _copy_project(tmp_path / "deeper" / "b")
    time.sleep(0.01)
    os.utime(os.path.join(b, "components", "trainer", "loop.py"))  # a newer mtime changes nothing
    for modules in COMPONENT_CODE.values():
        assert code_fingerprint(modules, a) == code_fingerprint(modules, b) == code_fingerprint(modules)


def test_a_comment_changes_only_the_components_that_run_that_file(tmp_path):
    root = _copy_project(tmp_path / "checkout")
    before = {name: code_fingerprint(modules, root) for name, modules in COMPONENT_CODE.items()}
    with open(os.path.join(root, "components", "trainer", "report.py"), "a") as f:
        f.write("# a comment\n")
    after = {name: code_fingerprint(modules, root) for name, modules in COMPONENT_CODE.items()}
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"Trainer", "TrainingHealthGate"}  # the health gate reads the gradient report



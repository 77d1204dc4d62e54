"""Code that runs inside the student's kernel after the notebook, to save the
artifacts an assignment declares.

This module is sent to the kernel as source text, so it imports nothing from
the kit and defines one function. Whatever it writes is untrusted input for
the evaluation stage, which loads it with safe loaders in its own process.
"""


def _autograder_export_artifacts(namespace, artifacts, outdir, suffixes, log_name, runtime_name):
    """Save each declared variable of ``namespace`` into ``outdir``.

    ``artifacts`` maps variable names to kinds (``model``, ``history``,
    ``array``), ``suffixes`` each kind to its file suffix (the table in
    :mod:`autograder.artifacts`). Writes the export log ``log_name`` with, per name, ``status``
    (``saved``, ``missing``, ``invalid``) and a ``message`` for the student.
    ``outdir`` is emptied first, so files the notebook itself put there (a
    model trained elsewhere, a fake report) are not taken for its work.
    Writes ``runtime_name`` with the Keras backend the notebook used and
    whether that backend computes on a GPU (``gpu``) or the CPU (``cpu``).
    """
    import json
    import os
    import shutil
    import sys

    import numpy as np

    log = {}

    def save_model(name, value):
        import keras

        if not isinstance(value, keras.Model):
            return f"`{name}` should be a Keras model, but it is a {type(value).__name__}."
        value.save(os.path.join(outdir, name + suffixes["model"]))

    def save_history(name, value):
        data = getattr(value, "history", value)
        if not isinstance(data, dict) or not data:
            return (
                f"`{name}` should be the History object that model.fit() returns, "
                f"but it is a {type(value).__name__}."
            )
        clean = {str(k): [float(v) for v in np.ravel(vals)] for k, vals in data.items()}
        with open(os.path.join(outdir, name + suffixes["history"]), "w") as f:
            json.dump(clean, f)

    def save_array(name, value):
        array = np.asarray(value)
        if array.dtype == object:
            return f"`{name}` should be a numeric array, but it holds Python objects."
        np.save(os.path.join(outdir, name + suffixes["array"]), array, allow_pickle=False)

    savers = {"model": save_model, "history": save_history, "array": save_array}
    if os.path.islink(outdir) or os.path.isfile(outdir):
        os.unlink(outdir)
    elif os.path.isdir(outdir):
        shutil.rmtree(outdir)
    os.makedirs(outdir)
    for name, kind in artifacts.items():
        if name not in namespace:
            log[name] = {
                "status": "missing",
                "message": f"Your notebook does not define `{name}`, so this part was not graded.",
            }
            continue
        try:
            problem = savers[kind](name, namespace[name])
        except Exception as exc:  # the student's object, anything can go wrong
            problem = f"`{name}` could not be saved: {type(exc).__name__}: {exc}"
        if not problem and not os.path.isfile(os.path.join(outdir, name + suffixes[kind])):
            problem = (
                f"`{name}` was not saved: saving it wrote no file. Does your notebook replace "
                "a function of Keras, NumPy or Python that saving uses? Remove that code."
            )
        log[name] = (
            {"status": "invalid", "message": problem} if problem else {"status": "saved"}
        )
    with open(os.path.join(outdir, log_name), "w") as f:
        json.dump(log, f)

    runtime = {"backend": None, "device": None}
    keras = sys.modules.get("keras")  # importing it here would take seconds for nothing
    if keras is not None:
        try:
            runtime["backend"] = keras.backend.backend()
            if runtime["backend"] == "torch":  # Keras puts its tensors on CUDA when torch has it
                on_gpu = sys.modules["torch"].cuda.is_available()
            else:  # TensorFlow and JAX list their default devices first: gpu:0, cuda:0 or cpu:0
                on_gpu = keras.distribution.list_devices()[0].split(":")[0] in ("gpu", "cuda")
            runtime["device"] = "gpu" if on_gpu else "cpu"
        except Exception:  # a backend without device listing: say nothing
            pass
    with open(os.path.join(outdir, runtime_name), "w") as f:
        json.dump(runtime, f)



def test_a_geometry_error_survives_a_process_pool():
    """Raised in a worker of a process pool (the training set's graph building), the error must come back
    whole; an exception with keyword-only fields that cannot be unpickled breaks the pool instead."""
    import pickle

    from csp.structures.validity import GeometryError

    exc = pickle.loads(pickle.dumps(GeometryError("atoms too close", index=3).named("mp:1")))
    assert (type(exc), exc.detail, exc.index, exc.name) == (GeometryError, "atoms too close", 3, "mp:1")
    assert str(exc) == "structure mp:1: atoms too close"


def test_every_exception_with_fields_of_its_own_survives_pickling():
    """The whole kind: each project exception whose ``__init__`` takes its own fields is rebuilt whole by
    pickle (process pools send exceptions back pickled). A new such class must be added here."""
    import importlib
    import inspect
    import pickle
    import pkgutil

    from csp.structures.validity import GeometryError
    from storage.errors import DiskWriteError
    from storage.optimade import FilterError

    samples = {
        GeometryError: GeometryError("too close", index=2, name="x:1"),
        DiskWriteError: DiskWriteError(28, "disk full at /lake"),
        FilterError: FilterError("unknown field", column=4, token="nsite"),
    }
    found = set()
    for package in ("csp", "storage"):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            module = importlib.import_module(info.name)
            for obj in vars(module).values():
                exception = inspect.isclass(obj) and issubclass(obj, BaseException)
                if exception and obj.__module__ == info.name and "__init__" in obj.__dict__:
                    found.add(obj)
    assert found == set(samples)
    for cls, exc in samples.items():
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is cls and str(back) == str(exc) and vars(back) == vars(exc)

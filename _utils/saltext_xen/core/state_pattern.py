"""The end every state function shares: nothing to do, a prediction, or the change.

A state validates its arguments, reads what is and plans the changes itself,
then hands the plan to ``conclude``:

.. code-block:: python

    return state_pattern.conclude(
        ret, changes, test=__opts__["test"],
        unchanged=f"{name} is already as wanted",
        would=f"{name} would be created",
        apply=lambda: make(name) or f"{name} was created",
        errors=(CommandExecutionError,),
    )

No Salt imports: the caller says which exceptions mean "the change failed".

A state given ``pillar_path`` (``xen:disks:newvm-1``) names every problem by it:
``guarded`` turns a :class:`Refused` or a read error raised before the ending
into a failed state, and ``conclude(..., path=...)`` names a failed change.
"""

import functools


class Failed(Exception):
    """Raised by an ``apply`` step that failed part way: the state fails with
    ``comment``, its changes being ``changes``, only what really happened."""

    def __init__(self, comment, changes=None):
        super().__init__(comment)
        self.comment = comment
        self.changes = changes or {}


class Refused(Exception):
    """Raised by a state before it reads or changes anything: its arguments have
    ``problems``, each ``<argument>: <message>``."""

    def __init__(self, problems):
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def checked(name, kwargs=None, problems=()):
    """A fresh return dict for state ``name``; :class:`Refused` when there are ``problems``
    or ``kwargs`` holds an argument the state does not take (Salt's own ``__*`` aside)."""
    unknown = [f"{key}: unknown argument" for key in sorted(kwargs or {}, key=str) if not str(key).startswith("__")]
    if problems or unknown:
        raise Refused([*problems, *unknown])
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def named(path, text, key=False):
    """``text`` named by the key path ``path``: ``path:text`` for a ``key: message``
    problem, else ``path: text``; ``text`` as it is when ``path`` is empty."""
    if not path:
        return str(text)
    return f"{path}:{text}" if key else f"{path}: {text}"


def guarded(errors=()):
    """Decorate a state function: a :class:`Refused`, or one of ``errors`` raised
    before it concludes, fails it with nothing changed, every problem named by its
    ``pillar_path`` argument (a keyword, as Salt passes it)."""

    def decorate(func):
        @functools.wraps(func)
        def state(name, *args, **kwargs):
            path = kwargs.get("pillar_path")
            try:
                return func(name, *args, **kwargs)
            except Refused as exc:
                lines = [named(path, problem, key=True) for problem in exc.problems]
            except errors as exc:
                lines = [named(path, exc)]
            return {"name": name, "result": False, "changes": {}, "comment": "\n".join(lines)}

        return state

    return decorate


def predicted(ret, changes, comment):
    """``ret`` for ``test=True``: result None and the changes a real run would make."""
    ret.update(result=None, changes=changes, comment=comment)
    return ret


def conclude(ret, changes, *, test, would, apply, unchanged=None, errors=(), failed=str, path=None):
    """Finish the state whose planned changes are ``changes`` ({} = nothing to do).

    ret
        the state's return dict, still ``result: True`` with no changes
    would / unchanged
        the comment under ``test=True`` / when nothing is to be done (not
        needed where ``changes`` is never empty)
    apply
        does the change; returns the comment, or ``(changes, comment)`` when
        what was done differs from the plan; may raise ``Failed``
    errors / failed
        exceptions of ``apply`` after which nothing was changed; ``failed(exc)``
        is then the comment
    path
        the key path naming a failure (``xen:disks:newvm-1: <the error>``)
    """
    if not changes:
        ret["comment"] = unchanged
        return ret
    if test:
        return predicted(ret, changes, would)
    ret["changes"] = changes
    try:
        done = apply()
    except Failed as exc:
        ret.update(result=False, changes=exc.changes, comment=named(path, exc.comment))
        return ret
    except errors as exc:
        ret.update(result=False, changes={}, comment=named(path, failed(exc)))
        return ret
    if isinstance(done, tuple):
        ret["changes"], done = done
    ret["comment"] = done
    return ret

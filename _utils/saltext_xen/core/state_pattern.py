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
"""


class Failed(Exception):
    """Raised by an ``apply`` step that failed part way: the state fails with
    ``comment``, its changes being ``changes``, only what really happened."""

    def __init__(self, comment, changes=None):
        super().__init__(comment)
        self.comment = comment
        self.changes = changes or {}


def predicted(ret, changes, comment):
    """``ret`` for ``test=True``: result None and the changes a real run would make."""
    ret.update(result=None, changes=changes, comment=comment)
    return ret


def conclude(ret, changes, *, test, would, apply, unchanged=None, errors=(), failed=str):
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
        ret.update(result=False, changes=exc.changes, comment=exc.comment)
        return ret
    except errors as exc:
        ret.update(result=False, changes={}, comment=failed(exc))
        return ret
    if isinstance(done, tuple):
        ret["changes"], done = done
    ret["comment"] = done
    return ret

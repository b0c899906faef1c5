"""The rules of the PR state machine, one module per stage, the guards they share in ``guards``.

Each rule takes a ``Tx`` and either changes the record through it (moving state, sending jobs,
releasing leases) or marks the event ignored with the reason. ``services.o2ims.table`` says
which rule answers which event in which phase. Pure: no I/O.
"""

"""A live engine freezes what survives each full collection; frozen state is still freed."""

import gc
import weakref

from stockflow.ops import gc_pauses


class _Held:
    pass


def test_what_survives_a_full_collection_is_frozen_and_still_freed_when_dropped():
    gc.unfreeze()
    gc_pauses.shorten()
    gc_pauses.shorten()  # once per process, however often it is asked
    try:
        assert gc.callbacks.count(gc_pauses._freeze_after_full) == 1
        state = {"lines": [_Held() for _ in range(100)]}
        gc.collect(1)
        assert gc.get_freeze_count() == 0  # a young collection freezes nothing
        gc.collect()
        frozen = gc.get_freeze_count()
        assert frozen > 100  # the state, with the rest of the process
        gone = []
        ref = weakref.ref(state["lines"][0], gone.append)
        del state
        assert ref() is None and gone  # reference counting frees frozen objects as before
        assert gc.get_freeze_count() <= frozen - 100  # and they leave the frozen set
    finally:
        gc.callbacks.remove(gc_pauses._freeze_after_full)
        gc.unfreeze()

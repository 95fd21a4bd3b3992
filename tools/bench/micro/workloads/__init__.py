"""The code each micro case measures, one function `(n, total)` per case: prepare what
`total` operations need, warm up, then do `n` operations. The warm-up checks what an
operation returns (a failed one raises), so a broken case never counts as a cheap one;
the measured loop does nothing but the operations."""

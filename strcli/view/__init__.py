"""`strcli view`: the reconstructed bodies in 3D in the browser (`viewer`, with viser)."""

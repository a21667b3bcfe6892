"""Tar streams, safe with hostile input: the hardened reader (`reader`), byte-exact header
writing (`header`), decompression by content (`decompress`) and forward-only streams
(`streams`). It depends on nothing else of polybuild, so layers, fileops (ADD's archives) and
image (layout archives for load and save) all build on it.
"""

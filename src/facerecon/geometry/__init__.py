"""Geometry helpers with no knowledge of faces, models or rendering: the bottom layer.

One home each for rotations (`rotation`), mesh topology and normals (`mesh`: edges, graph
Laplacian, vertex normals), point-set alignment (`similarity`: Umeyama) and mesh file readers
(`meshfiles`). Every other layer imports these instead of keeping its own copy.
"""

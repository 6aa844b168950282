import numpy as np
import torch

from facerecon.geometry.mesh import graph_laplacian, mesh_edges, subgraph_edges, unit_rows, vertex_normals
from facerecon.render.shading import vertex_normals as vertex_normals_torch


def _tetra():
    v = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    return v, f


def test_mesh_edges_are_unique_and_sorted():
    _, f = _tetra()
    e = mesh_edges(f)
    assert e.shape == (6, 2) and (e[:, 0] < e[:, 1]).all()


def test_graph_laplacian_rows_sum_to_zero_and_degree_on_diagonal():
    _, f = _tetra()
    lap = graph_laplacian(mesh_edges(f), 5).toarray()
    np.testing.assert_allclose(lap.sum(1), 0.0)
    np.testing.assert_allclose(np.diag(lap), [3, 3, 3, 3, 0])


def test_subgraph_edges_renumber_kept_vertices():
    _, f = _tetra()
    e = subgraph_edges(mesh_edges(f), np.array([1, 2, 3]), 4)
    assert sorted(map(tuple, e.tolist())) == [(0, 1), (0, 2), (1, 2)]


def test_vertex_normals_point_outward_and_match_the_differentiable_kernel():
    v, f = _tetra()
    n = vertex_normals(v, f)
    centre = v.mean(0)
    assert ((n * (v - centre)).sum(1) > 0).all()
    nt = vertex_normals_torch(torch.as_tensor(v[None]), torch.as_tensor(f))[0].numpy()
    np.testing.assert_allclose(n, nt, atol=1e-9)


def test_unit_rows_turns_zero_rows_to_plus_z():
    out = unit_rows(np.array([[0.0, 0, 0], [3.0, 0, 4]]))
    np.testing.assert_allclose(out, [[0, 0, 1], [0.6, 0, 0.8]])


def test_one_ply_reader_reads_what_the_writer_writes_with_colours(tmp_path):
    from facerecon.geometry.meshfiles import read_ply
    from facerecon.io import write_ply

    v, f = _tetra()
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 9, 9]]) / 255.0
    for binary in (True, False):
        path = write_ply(tmp_path / f"t{binary}.ply", v, f, colours, binary=binary)
        rv, rf, rc = read_ply(path)
        np.testing.assert_allclose(rv, v, atol=1e-6)
        assert rf.shape == (4, 3) and rc.tolist()[0] == [255, 0, 0]

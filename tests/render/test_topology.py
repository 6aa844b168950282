import torch

from facerecon.render.primitives import box, icosphere
from facerecon.render.topology import triangle_adjacency


def test_closed_mesh_edges_pair_up():
    _, f = icosphere(2)
    adj = triangle_adjacency(f)
    assert (adj >= 0).all()
    # the neighbour across edge k = (v_k, v_k+1) holds the same two vertices
    for t in range(0, len(f), 37):
        for k in range(3):
            edge = {int(f[t, k]), int(f[t, (k + 1) % 3])}
            assert edge <= set(f[adj[t, k]].tolist())
            assert t in adj[adj[t, k]].tolist()


def test_boundary_and_non_manifold_edges_have_no_neighbour():
    f = torch.tensor([[0, 1, 2], [0, 2, 3], [0, 2, 4], [5, 6, 7]])
    adj = triangle_adjacency(f)
    # edge (2, 0) is shared by three triangles: non-manifold
    assert adj[0].tolist() == [-1, -1, -1]
    assert adj[3].tolist() == [-1, -1, -1]


def test_cache_returns_the_right_answer_for_equal_and_different_meshes():
    _, f = box()
    a = triangle_adjacency(f)
    assert triangle_adjacency(f.clone()) is a
    b = triangle_adjacency(f.flip(1))
    assert b is not a and (b >= 0).all()

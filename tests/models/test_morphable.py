import numpy as np
import pytest
import torch

from facerecon.errors import ModelError, UsageError
from facerecon.models import LandmarkEmbedding, MorphableModel


def tiny_model(**overrides) -> MorphableModel:
    mean = torch.tensor([[-1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, -1.0, 0]])
    kw = dict(
        name="tiny", version="1", mean=mean,
        identity_basis=torch.randn(3, 4, 3, generator=torch.Generator().manual_seed(0)),
        identity_std=torch.ones(3), expression_basis=torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(1)),
        expression_names=("a", "b"), expression_kind="blendshape",
        triangles=torch.tensor([[0, 1, 2], [0, 3, 1]]),
        regions={"left": torch.tensor([0]), "all": torch.arange(4)},
    )
    kw.update(overrides)
    return MorphableModel(**kw)


def test_vertices_is_linear_in_coefficients():
    m = tiny_model()
    a = torch.randn(5, 3)
    e = torch.rand(5, 2)
    v = m.vertices(a, e)
    expected = m.mean + torch.einsum("bk,kvc->bvc", a, m.identity_basis) + torch.einsum("bk,kvc->bvc", e, m.expression_basis)
    assert v.shape == (5, 4, 3)
    torch.testing.assert_close(v, expected)


def test_vertices_accepts_the_first_k_modes_and_defaults():
    m = tiny_model()
    v = m.vertices(torch.ones(2, 1))
    torch.testing.assert_close(v[0], m.mean + m.identity_basis[0])
    assert m.vertices(batch_size=3).shape == (3, 4, 3)
    torch.testing.assert_close(m.vertices()[0], m.mean)


def test_vertices_rejects_bad_coefficient_shapes():
    m = tiny_model()
    with pytest.raises(UsageError, match="4 coefficients"):
        m.vertices(torch.zeros(1, 4))
    with pytest.raises(UsageError, match="disagree"):
        m.vertices(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(UsageError, match="no skeleton"):
        m.vertices(pose=torch.zeros(1, 5, 3))


def test_inconsistent_basis_shapes_are_caught_at_construction():
    with pytest.raises(ModelError, match="identity basis must be"):
        tiny_model(identity_basis=torch.zeros(3, 5, 3))
    with pytest.raises(ModelError, match="expression names"):
        tiny_model(expression_names=("a",))
    with pytest.raises(ModelError, match="out of range"):
        tiny_model(triangles=torch.tensor([[0, 1, 7]]))
    with pytest.raises(ModelError, match="NaN"):
        tiny_model(mean=torch.full((4, 3), float("nan")))


def test_one_bad_value_in_a_basis_is_caught_and_huge_finite_values_are_not():
    for bad in (float("nan"), float("inf"), -float("inf")):
        basis = torch.randn(3, 4, 3)
        basis[1, 2, 0] = bad
        with pytest.raises(ModelError, match="identity basis has NaN or inf"):
            tiny_model(identity_basis=basis)
    # finite values whose float32 sum overflows are still valid
    tiny_model(identity_basis=torch.full((3, 4, 3), 3e38))


def test_symmetry_map_pairs_mirrored_vertices():
    m = tiny_model()
    assert m.symmetry.tolist() == [1, 0, 2, 3]


def test_landmark_embedding_from_vertices_reproduces_vertex_positions():
    m = tiny_model()
    emb = LandmarkEmbedding.from_vertices([2, 3], m.triangles)
    v = m.vertices(torch.randn(2, 3))
    torch.testing.assert_close(m.landmark_points(v, emb), v[:, [2, 3]])


def test_view_keeps_complete_triangles_and_maps_back():
    m = tiny_model()
    view = m.view(torch.tensor([0, 1, 2]))
    assert view.num_vertices == 3
    assert view.triangles.tolist() == [[0, 1, 2]]
    a = torch.randn(1, 3)
    full = m.vertices(a)
    part = view.vertices(a)
    torch.testing.assert_close(part, full[:, view.parent_vertices])
    back = view.scatter_to_parent(part, m)
    torch.testing.assert_close(back[:, :3], full[:, :3])
    torch.testing.assert_close(back[:, 3], m.mean[3].expand(1, 3))
    with pytest.raises(UsageError, match="no region"):
        m.view("nose")


def test_sample_is_reproducible_and_bounded():
    m = tiny_model()
    s1, s2 = m.sample(8, seed=3), m.sample(8, seed=3)
    torch.testing.assert_close(s1.identity, s2.identity)
    torch.testing.assert_close(s1.expression, s2.expression)
    assert not torch.equal(s1.identity, m.sample(8, seed=4).identity)
    assert s1.expression.min() >= 0 and s1.expression.max() <= 1


def test_to_float64_keeps_values():
    m = tiny_model().to(dtype=torch.float64)
    assert m.mean.dtype == torch.float64 and m.triangles.dtype == torch.long
    assert m.vertices(torch.zeros(1, 3, dtype=torch.float64)).dtype == torch.float64


def test_ict_model_in_mm_and_symmetric(ict_model):
    m = ict_model
    assert m.num_vertices == 26719 and m.num_identity == 100 and m.num_expression == 53
    width = float(m.mean[:, 0].max() - m.mean[:, 0].min())
    assert 200 < width < 300  # a head is about 25 cm wide
    sym = m.symmetry
    involution = (sym[sym] == torch.arange(m.num_vertices)).float().mean()
    assert involution > 0.95
    mirrored = m.mean[sym] * torch.tensor([-1.0, 1, 1])
    assert float((mirrored - m.mean).norm(dim=1).median()) < 0.5


def test_ict_head_view(ict_model, ict_head):
    assert ict_head.num_vertices == 11248
    assert ict_head.landmarks68 is not None
    a = torch.randn(2, 100)
    e = torch.rand(2, 53)
    torch.testing.assert_close(ict_head.vertices(a, e), ict_model.vertices(a, e)[:, ict_head.parent_vertices])
    torch.testing.assert_close(ict_head.landmark_points(ict_head.vertices(a, e)),
                               ict_model.landmark_points(ict_model.vertices(a, e)))
    assert np.isin(ict_head.regions["narrow_face"].numpy(), np.arange(11248)).all()

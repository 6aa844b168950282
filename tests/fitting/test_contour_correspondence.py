import numpy as np

from facerecon.fitting.contour_correspondence import ContourLines, contour_lines, update_contour_correspondences
from facerecon.fitting.correspondence import VertexCorrespondence


def test_contour_lines_start_at_the_default_vertex_and_stay_on_one_side(ict_head):
    from facerecon.landmarks import load_correspondence
    from facerecon.fitting import correspondence_on

    emb = load_correspondence(ict_head)
    corr = correspondence_on(ict_head, emb.as_embedding(), sliding=emb.sliding.cpu().numpy())
    mean = ict_head.mean.double().numpy()
    lines = contour_lines(mean, ict_head.regions["face"].numpy(), corr)
    assert len(lines.landmarks) > 10
    for k, li in enumerate(lines.landmarks):
        cand = lines.vertices[lines.starts[k]:lines.starts[k + 1]]
        default = corr.vertex_ids[li, np.argmax(corr.weights[li])]
        assert cand[0] == default
        assert (np.sign(mean[cand, 0]) == np.sign(mean[default, 0])).all()


def test_update_picks_the_outermost_vertex_that_faces_the_camera():
    # one sliding landmark with three candidates on a slice: x = 10, 20, 30; the last faces away
    candidates = np.array([[10.0, 0, 0], [20.0, 0, -5], [30.0, 0, -20]])
    normals = np.array([[0.0, 0, 1], [0.7, 0, 0.7], [1.0, 0, -0.3]])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    lines = ContourLines(np.array([0]), np.array([0, 3]), np.array([100, 101, 102]))
    vids = np.array([[100, 100, 100], [5, 5, 5]])
    centre = np.zeros((2, 3))
    out = update_contour_correspondences(vids, lines, candidates, normals, centre, np.zeros(3),
                                         np.array([0.0, 0.0, -500.0]), 1000.0, np.array([200.0, 200.0]))
    assert out[0].tolist() == [101, 101, 101] and out[1].tolist() == [5, 5, 5]
    VertexCorrespondence(out, np.tile([1.0, 0, 0], (2, 1)), np.array([True, False]))

"""Morphable models: one type (`MorphableModel`), one loader module per file format."""
from .lbs import Skeleton, skin
from .manager import KNOWN_MODELS, cache_dir, fetch_model, find_model, list_models, load_model, load_model_file
from .morphable import VIEWS, LandmarkEmbedding, MorphableModel, ShapeCoefficients
from .symmetry import symmetry_map

__all__ = [
    "KNOWN_MODELS", "LandmarkEmbedding", "MorphableModel", "ShapeCoefficients", "Skeleton", "VIEWS",
    "cache_dir", "fetch_model", "find_model", "list_models", "load_model", "load_model_file",
    "skin", "symmetry_map",
]

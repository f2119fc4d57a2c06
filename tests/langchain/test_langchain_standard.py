"""The langchain-tests standard suites for ColBERTEmbeddings.

Unit suites build the embeddings from the tiny model's directory (lazy loading from a path);
the integration suite runs on the tiny model too, and (integration-marked) on the real model
from COLBERT_PLUGINS_TEST_MODEL, shared as one ColBERT instance. Mean pooling and MUVERA.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from colbert_plugins import ColBERT
from colbert_plugins.langchain import ColBERTEmbeddings


class TestColBERTEmbeddingsUnit(EmbeddingsUnitTests):
    pooling = "mean"

    @pytest.fixture(autouse=True)
    def _model_dir(self, tiny_model_dir: pathlib.Path) -> None:
        self.model_dir = tiny_model_dir

    @property
    def embeddings_class(self) -> type[ColBERTEmbeddings]:
        return ColBERTEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {
            "model": str(self.model_dir),
            "pooling": self.pooling,
            "threads": 1,
            "query_length": 8,
        }


class TestColBERTEmbeddingsMuveraUnit(TestColBERTEmbeddingsUnit):
    pooling = "muvera"


class TestColBERTEmbeddingsOnTinyModel(EmbeddingsIntegrationTests):
    """The integration suite's checks (embed/aembed, lengths, floats) on the tiny model, so
    that they run without a real model too."""

    @pytest.fixture(autouse=True)
    def _model(self, tiny_model: ColBERT) -> None:
        self.colbert = tiny_model

    @property
    def embeddings_class(self) -> type[ColBERTEmbeddings]:
        return ColBERTEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": self.colbert, "pooling": "muvera", "r_reps": 4}


@pytest.mark.integration
class TestColBERTEmbeddingsIntegration(EmbeddingsIntegrationTests):
    pooling = "mean"

    @pytest.fixture(autouse=True)
    def _model(self, real_model: ColBERT) -> None:
        self.colbert = real_model

    @property
    def embeddings_class(self) -> type[ColBERTEmbeddings]:
        return ColBERTEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": self.colbert, "pooling": self.pooling}


@pytest.mark.integration
class TestColBERTEmbeddingsMuveraIntegration(TestColBERTEmbeddingsIntegration):
    pooling = "muvera"

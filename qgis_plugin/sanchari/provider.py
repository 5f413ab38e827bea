"""The SANCHARi Processing provider."""

from qgis.core import QgsProcessingProvider

from .adapt import AdaptModel
from .algorithms import CatalogueImageRoads, ExtentRoads, PointRoads


class SanchariProvider(QgsProcessingProvider):
    def id(self):
        return "sanchari"

    def name(self):
        return "SANCHARi"

    def longName(self):
        return "SANCHARi road extraction (OGC API - Processes)"

    def loadAlgorithms(self):
        for algorithm in (ExtentRoads(), PointRoads(), CatalogueImageRoads(), AdaptModel()):
            self.addAlgorithm(algorithm)

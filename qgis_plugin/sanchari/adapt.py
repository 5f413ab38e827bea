"""Processing algorithm "Adapt model to this area": the server's model, adapted to the area of a
raster layer from the roads of a line layer, as a model of the server's models folder.

The raster layer's extent (in its CRS) is the ``bbox`` of the server's catalogue imagery; the
roads (the layer's selected features when it has a selection, else all of it) go by value as
GeoJSON in EPSG:4326, with an optional polygon layer of where they are complete. The layers are
read in :meth:`AdaptModel.prepareAlgorithm`, on QGIS's main thread; the job runs in the
background like the extraction algorithms' (progress, and Cancel dismisses it). The model id
comes back as an output: give it as ``MODEL`` to an "Extract roads" algorithm.
"""

import json

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsGeometry,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
)

from .algorithms import DEFAULT_SERVER
from .client import Cancelled, ServiceError, run_adaptation

WGS84 = QgsCoordinateReferenceSystem("EPSG:4326")
#: Decimal places of the coordinates sent (1e-7 degrees: about a centimetre).
PRECISION = 7


def layer_geojson(layer, transform_context, what):
    """The layer's selected features (all of them when none is selected) as a GeoJSON
    FeatureCollection in EPSG:4326 (geometries only)."""
    request = QgsFeatureRequest().setNoAttributes()
    if layer.selectedFeatureCount():
        request.setFilterFids(layer.selectedFeatureIds())
    to_wgs84 = QgsCoordinateTransform(layer.crs(), WGS84, transform_context)
    features = []
    for feature in layer.getFeatures(request):
        geometry = QgsGeometry(feature.geometry())
        if geometry.isNull() or geometry.isEmpty():
            continue
        if layer.crs() != WGS84:
            geometry.transform(to_wgs84)
        geojson = json.loads(geometry.asJson(PRECISION))
        features.append({"type": "Feature", "properties": {}, "geometry": geojson})
    if not features:
        raise QgsProcessingException(f"{what}: the layer has no features with a geometry")
    return {"type": "FeatureCollection", "features": features}


def extent_bbox(layer, transform_context):
    """The raster layer's extent as the ``bbox`` input: in the layer's CRS when it has an
    authority id the server can read, else transformed to longitude/latitude (CRS84)."""
    extent, crs = layer.extent(), layer.crs()
    if extent.isEmpty():
        raise QgsProcessingException("the raster layer's extent is empty")
    if not crs.isValid():
        raise QgsProcessingException("the raster layer has no CRS: its place is unknown")
    if not crs.authid():
        to_wgs84 = QgsCoordinateTransform(crs, WGS84, transform_context)
        extent = to_wgs84.transformBoundingBox(extent)
    box = [extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()]
    return {"bbox": box, "crs": crs.authid()} if crs.authid() else {"bbox": box}


class AdaptModel(QgsProcessingAlgorithm):
    """Adapt the server's model to this area (one road-model-adaptation job)."""

    def name(self):
        return "adapt_model"

    def displayName(self):
        return "Adapt model to this area"

    def group(self):
        return "Road extraction"

    def groupId(self):
        return "roads"

    def shortHelpString(self):
        return (
            "Adapts the server's road model to the area of the raster layer (the server reads "
            "its own catalogue imagery inside the layer's extent) from the roads of a line "
            "layer: its selected features, or all of it when none is selected (OpenStreetMap "
            "lines, lines you drew, or roads you corrected after an extraction). First the "
            "threshold is re-chosen for the area, then a fine-tune is kept only where it beats "
            "that on parts it did not train on; the card says which and why. The output MODEL "
            "is the new model's id: give it as 'Model id' to an Extract roads algorithm."
        )

    def createInstance(self):
        return type(self)()

    def initAlgorithm(self, config=None):
        self.addParameter(
            QgsProcessingParameterRasterLayer(
                "RASTER", "Imagery (its extent: the server's catalogue there)"
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                "ROADS", "Your roads (the selected lines, else all)", [QgsProcessing.TypeVectorLine]
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                "AREA",
                "Where your roads are complete (polygons; empty: around the roads)",
                [QgsProcessing.TypeVectorPolygon],
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterString("SERVER", "SANCHARi server URL", DEFAULT_SERVER)
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "MINUTES",
                "Budget (CPU minutes of fine-tuning)",
                QgsProcessingParameterNumber.Double,
                defaultValue=5.0,
                minValue=0.5,
                maxValue=120.0,
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean("FINETUNE", "Fine-tune (else the threshold only)", True)
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "ROAD_WIDTH",
                "Road width (metres)",
                QgsProcessingParameterNumber.Double,
                defaultValue=6.0,
                minValue=0.5,
                maxValue=50.0,
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                "NAME", "Model id (empty: made up by the server)", optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                "BASE_MODEL", "Base model id (empty: the server's model)", optional=True
            )
        )
        self.addOutput(QgsProcessingOutputString("MODEL", "Model id"))
        self.addOutput(QgsProcessingOutputString("VERDICT", "Verdict"))
        self.addOutput(QgsProcessingOutputString("CARD", "Model card (Markdown)"))
        self.addOutput(QgsProcessingOutputString("JOB", "Job URL"))

    def prepareAlgorithm(self, parameters, context, feedback):
        """Read the layers here, on the main thread (their selection included)."""
        raster = self.parameterAsRasterLayer(parameters, "RASTER", context)
        roads = self.parameterAsVectorLayer(parameters, "ROADS", context)
        if raster is None or roads is None:
            raise QgsProcessingException("a raster layer and a line layer are needed")
        transforms = context.transformContext()
        inputs = {
            "bbox": extent_bbox(raster, transforms),
            "roads": layer_geojson(roads, transforms, "roads"),
            "minutes": self.parameterAsDouble(parameters, "MINUTES", context),
            "finetune": self.parameterAsBoolean(parameters, "FINETUNE", context),
            "road_width_m": self.parameterAsDouble(parameters, "ROAD_WIDTH", context),
        }
        area = self.parameterAsVectorLayer(parameters, "AREA", context)
        if area is not None:
            inputs["area"] = layer_geojson(area, transforms, "area")
        for key, name in (("NAME", "name"), ("BASE_MODEL", "model")):
            value = (self.parameterAsString(parameters, key, context) or "").strip()
            if value:
                inputs[name] = value
        self._inputs = inputs
        self._sent = len(inputs["roads"]["features"])
        return True

    def processAlgorithm(self, parameters, context, feedback):
        server = self.parameterAsString(parameters, "SERVER", context)
        feedback.pushInfo(f"adapting on {server} with {self._sent} road feature(s)")

        def progress(percent, message):
            feedback.setProgress(percent)
            if message:
                feedback.setProgressText(message)

        try:
            job_url, model = run_adaptation(server, self._inputs, progress, feedback.isCanceled)
        except Cancelled as exc:
            raise QgsProcessingException(f"cancelled: {exc}") from None
        except ServiceError as exc:
            raise QgsProcessingException(str(exc)) from None
        feedback.pushInfo(f"model {model['id']}: {model['verdict']}")
        feedback.pushInfo(model.get("card") or "")
        return {
            "MODEL": model["id"],
            "VERDICT": model["verdict"],
            "CARD": model.get("card") or "",
            "JOB": job_url,
        }

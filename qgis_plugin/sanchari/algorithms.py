"""Processing algorithms: roads for an extent, around a point, or from a catalogue image.

Each runs one asynchronous job on a SANCHARi server (:mod:`.client`): the job's progress feeds
the Processing progress bar, Cancel dismisses the job (DELETE), and the outputs come back by
reference — the roads as a GeoPackage written to ``OUTPUT``, the mask and probability COGs to
their destinations when asked (their URLs are outputs too, for opening with /vsicurl/).
``MODEL`` names a model of the server's models folder (one "Adapt model to this area" made,
:mod:`.adapt`); empty, the server's own model runs.
"""

import os
import shutil
import tempfile

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterNumber,
    QgsProcessingParameterPoint,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
    QgsProject,
    QgsVectorFileWriter,
    QgsVectorLayer,
)

from .client import Cancelled, ServiceError, download, execution_body, run_job

TTA = ["none", "flip4", "d4"]
DEFAULT_SERVER = os.environ.get("SANCHARI_SERVER", "http://127.0.0.1:5000")


class _RoadsAlgorithm(QgsProcessingAlgorithm):
    """What the three algorithms share: server, options, the job, the outputs."""

    def group(self):
        return "Road extraction"

    def groupId(self):
        return "roads"

    def createInstance(self):
        return type(self)()

    def initAlgorithm(self, config=None):
        self.addImageryParameters()
        self.addParameter(
            QgsProcessingParameterString("SERVER", "SANCHARi server URL", DEFAULT_SERVER)
        )
        self.addParameter(
            QgsProcessingParameterString(
                "MODEL", "Model id (empty: the server's model)", optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum("TTA", "Test-time augmentation", TTA, defaultValue=1)
        )
        threshold = QgsProcessingParameterNumber(
            "THRESHOLD",
            "Road probability threshold (empty: the model's)",
            QgsProcessingParameterNumber.Double,
            optional=True,
            minValue=0.0,
            maxValue=1.0,
        )
        self.addParameter(threshold)
        self.addParameter(QgsProcessingParameterBoolean("MASK", "Also the road mask", False))
        self.addParameter(
            QgsProcessingParameterBoolean("PROBABILITY", "Also the road probability", False)
        )
        self.addParameter(
            QgsProcessingParameterVectorDestination("OUTPUT", "Roads", QgsProcessing.TypeVectorLine)
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(
                "MASK_OUTPUT", "Road mask (COG)", optional=True, createByDefault=False
            )
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(
                "PROBABILITY_OUTPUT", "Road probability (COG)", optional=True, createByDefault=False
            )
        )
        self.addOutput(QgsProcessingOutputString("JOB", "Job URL"))
        self.addOutput(QgsProcessingOutputString("MASK_URL", "Road mask URL"))
        self.addOutput(QgsProcessingOutputString("PROBABILITY_URL", "Road probability URL"))

    def addImageryParameters(self):
        raise NotImplementedError

    def imageryInputs(self, parameters, context):
        raise NotImplementedError

    def processAlgorithm(self, parameters, context, feedback):
        inputs = self.imageryInputs(parameters, context)
        inputs["tta"] = TTA[self.parameterAsEnum(parameters, "TTA", context)]
        model = (self.parameterAsString(parameters, "MODEL", context) or "").strip()
        if model:
            inputs["model"] = model
        if parameters.get("THRESHOLD") not in (None, ""):
            inputs["threshold"] = self.parameterAsDouble(parameters, "THRESHOLD", context)
        mask = self.parameterAsBoolean(parameters, "MASK", context)
        probability = self.parameterAsBoolean(parameters, "PROBABILITY", context)
        server = self.parameterAsString(parameters, "SERVER", context)
        body = execution_body(inputs, mask=mask, probability=probability)
        feedback.pushInfo(f"SANCHARi job on {server}: {inputs}")

        def progress(percent, message):
            feedback.setProgress(percent)
            if message:
                feedback.setProgressText(message)

        try:
            job_url, links = run_job(server, body, progress, feedback.isCanceled)
        except Cancelled as exc:
            raise QgsProcessingException(f"cancelled: {exc}") from None
        except ServiceError as exc:
            raise QgsProcessingException(str(exc)) from None
        feedback.pushInfo(f"job finished: {job_url}")
        results = {"JOB": job_url, "MASK_URL": links.get("mask", ""), "PROBABILITY_URL": ""}
        results["PROBABILITY_URL"] = links.get("probability", "")
        results["OUTPUT"] = self._save_roads(links["roads"], parameters, context)
        for key, output in (("mask", "MASK_OUTPUT"), ("probability", "PROBABILITY_OUTPUT")):
            if key in links and parameters.get(output):
                path = self.parameterAsOutputLayer(parameters, output, context)
                results[output] = download(links[key], path)
        return results

    def _save_roads(self, url, parameters, context):
        """The roads GeoPackage at ``OUTPUT`` (converted when another format is asked for)."""
        path = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        if path.lower().endswith(".gpkg"):
            return download(url, path)
        with tempfile.TemporaryDirectory() as tmp:
            local = download(url, os.path.join(tmp, "roads.gpkg"))
            layer = QgsVectorLayer(local, "roads", "ogr")
            options = QgsVectorFileWriter.SaveVectorOptions()
            options.driverName = QgsVectorFileWriter.driverForExtension(os.path.splitext(path)[1])
            error = QgsVectorFileWriter.writeAsVectorFormatV2(
                layer, path, context.transformContext(), options
            )
            if error[0] != QgsVectorFileWriter.NoError:
                raise QgsProcessingException(f"cannot write {path}: {error[1]}")
            del layer
            shutil.rmtree(tmp, ignore_errors=True)
        return path


class ExtentRoads(_RoadsAlgorithm):
    def name(self):
        return "extract_roads_extent"

    def displayName(self):
        return "Extract roads for an extent"

    def shortHelpString(self):
        return (
            "Road centrelines inside the extent (e.g. the map canvas), from the server's catalogue."
        )

    def addImageryParameters(self):
        self.addParameter(QgsProcessingParameterExtent("EXTENT", "Extent"))

    def imageryInputs(self, parameters, context):
        extent = self.parameterAsExtent(parameters, "EXTENT", context)
        crs = self.parameterAsExtentCrs(parameters, "EXTENT", context)
        if extent.isEmpty():
            raise QgsProcessingException("the extent is empty")
        box = [extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()]
        return {"bbox": {"bbox": box, "crs": crs.authid() or crs.toWkt()}}


class PointRoads(_RoadsAlgorithm):
    def name(self):
        return "extract_roads_point"

    def displayName(self):
        return "Extract roads around a point"

    def shortHelpString(self):
        return "Road centrelines in a square window (source pixels) centred on the point."

    def addImageryParameters(self):
        self.addParameter(QgsProcessingParameterPoint("POINT", "Centre"))
        self.addParameter(
            QgsProcessingParameterNumber(
                "WINDOW_SIZE", "Window size (pixels)", defaultValue=1024, minValue=64
            )
        )

    def imageryInputs(self, parameters, context):
        point = self.parameterAsPoint(parameters, "POINT", context)
        crs = self.parameterAsPointCrs(parameters, "POINT", context)
        wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
        if crs.isValid() and crs != wgs84:
            transform = QgsCoordinateTransform(crs, wgs84, QgsProject.instance())
            point = transform.transform(point)
        return {
            "latitude": point.y(),
            "longitude": point.x(),
            "window_size": self.parameterAsInt(parameters, "WINDOW_SIZE", context),
        }


class CatalogueImageRoads(_RoadsAlgorithm):
    def name(self):
        return "extract_roads_catalogue"

    def displayName(self):
        return "Extract roads from a catalogue image"

    def shortHelpString(self):
        return "Road centrelines of a whole image of the server's catalogue, by file name."

    def addImageryParameters(self):
        self.addParameter(
            QgsProcessingParameterString("IMAGE", "Catalogue file name", "paris_img1447.tif")
        )

    def imageryInputs(self, parameters, context):
        return {"image": self.parameterAsString(parameters, "IMAGE", context)}

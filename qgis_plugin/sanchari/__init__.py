"""SANCHARi for QGIS: a Processing provider whose algorithms call a SANCHARi server."""


def classFactory(iface):
    from .plugin import SanchariPlugin

    return SanchariPlugin(iface)

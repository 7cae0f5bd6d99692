"""Great-circle distance, used to rank nodes for an order line and for transfers."""

from math import asin, cos, radians, sin, sqrt

EARTH_DIAMETER_KM = 12_742.0


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Distance in km between two points given in degrees."""
    la1, la2 = radians(lat1), radians(lat2)
    h = sin((la2 - la1) / 2) ** 2 + cos(la1) * cos(la2) * sin(radians(lon2 - lon1) / 2) ** 2
    return EARTH_DIAMETER_KM * asin(sqrt(h))

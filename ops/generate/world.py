"""The fixed world every trace plays in: provinces, DCs, distributors and sales channels."""

from __future__ import annotations

from .scenario import cumulative

# (region, code, lat, lon of the capital, weight of online demand)
PROVINCES: tuple[tuple[str, str, float, float, float], ...] = (
    ("Guangdong", "GD", 23.13, 113.26, 12.0),
    ("Zhejiang", "ZJ", 30.27, 120.15, 9.0),
    ("Jiangsu", "JS", 32.06, 118.80, 9.0),
    ("Shanghai", "SH", 31.23, 121.47, 7.0),
    ("Beijing", "BJ", 39.90, 116.41, 6.0),
    ("Shandong", "SD", 36.65, 117.12, 6.0),
    ("Sichuan", "SC", 30.57, 104.07, 5.0),
    ("Henan", "HA", 34.75, 113.63, 5.0),
    ("Hubei", "HB", 30.59, 114.31, 4.0),
    ("Fujian", "FJ", 26.07, 119.30, 4.0),
    ("Hunan", "HN", 28.23, 112.94, 3.5),
    ("Hebei", "HE", 38.04, 114.51, 3.0),
    ("Anhui", "AH", 31.82, 117.23, 3.0),
    ("Shaanxi", "SN", 34.34, 108.94, 2.5),
    ("Chongqing", "CQ", 29.56, 106.55, 2.5),
    ("Tianjin", "TJ", 39.13, 117.20, 2.0),
    ("Liaoning", "LN", 41.80, 123.43, 2.0),
    ("Yunnan", "YN", 25.04, 102.71, 1.5),
    ("Guangxi", "GX", 22.82, 108.37, 1.5),
    ("Jiangxi", "JX", 28.68, 115.86, 1.5),
    ("Heilongjiang", "HL", 45.80, 126.53, 1.0),
    ("Xinjiang", "XJ", 43.83, 87.62, 0.5),
)
PROVINCE_CUM = cumulative([p[4] for p in PROVINCES])

# DCs sit on the outskirts of big logistics hubs. (id, region, lat, lon, share of stock)
DCS: tuple[tuple[str, str, float, float, float], ...] = (
    ("DC-SH", "Shanghai", 31.05, 121.25, 0.25),
    ("DC-GZ", "Guangdong", 23.30, 113.45, 0.22),
    ("DC-BJ", "Beijing", 39.75, 116.55, 0.17),
    ("DC-HZ", "Zhejiang", 30.35, 120.30, 0.13),
    ("DC-WH", "Hubei", 30.50, 114.20, 0.12),
    ("DC-CD", "Sichuan", 30.65, 103.95, 0.11),
)
DISTRIBUTORS: tuple[tuple[str, str, float, float], ...] = (
    ("DS-ZZ", "Henan", 34.80, 113.70),
    ("DS-XA", "Shaanxi", 34.30, 108.90),
)

# id, order-id prefix, weight in normal traffic, weight in the flash sale, P(paid at creation)
CHANNELS: tuple[tuple[str, str, float, float, float], ...] = (
    ("tmall", "TM-", 0.32, 0.12, 0.55),
    ("jd", "JD-", 0.20, 0.0, 0.60),
    ("douyin-live", "DY-", 0.12, 0.80, 0.50),
    ("wechat", "WX-", 0.10, 0.08, 0.55),
    ("own-shop", "OS-", 0.10, 0.0, 0.50),
    ("store-pos", "POS-", 0.16, 0.0, 0.95),
)
POS = 5  # index of store-pos in CHANNELS: its orders are pickups at a store
CHANNEL_IDS = [c[0] for c in CHANNELS]
ORDER_PREFIX = [c[1] for c in CHANNELS]
P_PAID = [c[4] for c in CHANNELS]
NORMAL_CHANNEL_CUM = cumulative([c[2] for c in CHANNELS])
SPIKE_CHANNEL_CUM = cumulative([c[3] for c in CHANNELS])

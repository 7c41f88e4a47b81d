"""The benchmark's floor: AlphaPulse's trades API as a single-tenant app would serve it.

Stock DRF and simplejwt's stock JWTAuthentication, no tenant middleware, no
tenant lookup, no tenant setting, on a database where RLS is off (the OFF
state: us004 rolled back). Served by gunicorn like the ON and OFF variants
(`DJANGO_SETTINGS_MODULE=bench.floor.settings`, `PYTHONPATH=scripts`); never
part of the product.
"""

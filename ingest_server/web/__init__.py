"""The HTTP layer: thin views over the domain modules. The only package that imports aiohttp."""

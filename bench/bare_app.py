"""The baseline: the smallest FastAPI app that answers `GET /` like Doki's health check does."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def root() -> dict[str, str]:
    return {"message": "Doki Backend up"}

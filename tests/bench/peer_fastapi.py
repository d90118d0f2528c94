#!/usr/bin/python3
"""Benchmark peer: FastAPI/uvicorn reproduction of the public batch-jobs example.

Contract:
  GET  /health                          -> 200 {"status":"ok"}
  POST /job?duration=N&failed=true|1    (optional JSON-object body)
       sleeps N seconds (default 5), logging progress each second;
       success -> 200 {"success":true,"message":"Job completed successfully",
                       "executionTime":N,"timestamp":"YYYY-MM-DD HH:MM:SS"}
       failed  -> 500 {"detail":"Job failed as requested via failed parameter"}
       then the process exits (0 on success, 1 on failure) after the
       response has been sent, via a background task (sleep 0.1 s, os._exit).

Run with the Debian interpreter (it has python3-fastapi / python3-uvicorn):
  /usr/bin/python3 tests/bench/peer_fastapi.py --port 8080
"""
import argparse
import asyncio
import logging
import os
from datetime import datetime
from typing import Any, Dict, Optional

import uvicorn
from fastapi import BackgroundTasks, Body, FastAPI
from fastapi.responses import JSONResponse

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger("peer_fastapi")

app = FastAPI()


async def _exit_after_response(code: int) -> None:
    await asyncio.sleep(0.1)
    log.info("Exiting with code %d", code)
    logging.shutdown()
    os._exit(code)


@app.get("/health")
async def health() -> Dict[str, str]:
    return {"status": "ok"}


@app.post("/job")
async def job(
    background_tasks: BackgroundTasks,
    duration: int = 5,
    failed: Optional[str] = None,
    body: Optional[Dict[str, Any]] = Body(None),
):
    log.info("Job started: duration=%ds failed=%s body=%s", duration, failed, body)
    for i in range(1, duration + 1):
        await asyncio.sleep(1)
        log.info("Progress: %d/%d seconds elapsed", i, duration)

    if failed is not None and failed.lower() in ("true", "1"):
        log.info("Job failed as requested")
        background_tasks.add_task(_exit_after_response, 1)
        return JSONResponse(
            status_code=500,
            content={"detail": "Job failed as requested via failed parameter"},
            background=background_tasks,
        )

    log.info("Job completed successfully")
    background_tasks.add_task(_exit_after_response, 0)
    return {
        "success": True,
        "message": "Job completed successfully",
        "executionTime": duration,
        "timestamp": datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

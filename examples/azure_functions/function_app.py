"""Build ZIP files in the background on Azure Functions: a web request enqueues
the job and answers with the polling protocol; the queue trigger runs it."""

from __future__ import annotations

import io
import zipfile

import azure.functions as func

from offload import App, JobContext
from offload.integrations.azure_functions import blueprint

app = App("azure://?prefix=zips")  # connection string: AZURE_STORAGE_CONNECTION_STRING


@app.task(name="zips.build", max_attempts=3)
async def build_zip(files: dict[str, str], ctx: JobContext) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n, (name, text) in enumerate(files.items(), 1):
            archive.writestr(name, text)
            await ctx.progress_async(n / len(files), name)
    return len(buffer.getvalue())


function_app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
function_app.register_functions(blueprint(app, queues=["default"]))


@function_app.route(route="zips", methods=["POST"])
async def enqueue(req: func.HttpRequest) -> func.HttpResponse:
    job = await build_zip.enqueue_async(req.get_json())
    return func.HttpResponse(status_code=202, headers={"Location": f"/api/zips/{job.id}"})


@function_app.route(route="zips/{job_id}", methods=["GET"])
async def status(req: func.HttpRequest) -> func.HttpResponse:
    job = await app.get_job_async(req.route_params["job_id"])
    if job is None:
        return func.HttpResponse(status_code=404)
    if not job.ended:
        return func.HttpResponse(status_code=204, headers={"Retry-After": "2"})
    if job.state == "succeeded":
        return func.HttpResponse(f'{{"bytes": {job.result}}}', mimetype="application/json")
    return func.HttpResponse(f'{{"state": "{job.state}"}}', status_code=200)

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

import updater_stats


@csrf_exempt  # devices post without cookies or a CSRF token; every other view stays protected
@require_http_methods(["GET", "POST"])
def stats(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return JsonResponse({"status": "ok"})  # operators' health check
    try:
        body = request.body
    except RequestDataTooBig as error:  # over DATA_UPLOAD_MAX_MEMORY_SIZE: 413, not Django's 400
        too_large = updater_stats.PayloadTooLargeError(str(error), code="body_too_large")
        return JsonResponse(too_large.body, status=too_large.status_code)
    # A sync view: under ASGI, Django runs it in a worker thread, off the event loop.
    answer = updater_stats.respond(body)
    return HttpResponse(answer.json(), status=answer.status_code, content_type="application/json")

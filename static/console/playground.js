// The console playground: sends the conversation to playground_chat and shows the
// server-sent events as they arrive. The page holds no API key; the session and the CSRF
// token authenticate the request, and the gateway bills the organization's playground key.
(function () {
  "use strict";
  var form = document.getElementById("playground");
  if (!form) return;
  var chatUrl = form.getAttribute("data-chat-url");
  var billingUrl = form.getAttribute("data-billing-url");
  var csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var modelSelect = document.getElementById("model");
  var prompt = document.getElementById("prompt");
  var sendButton = document.getElementById("send");
  var clearButton = document.getElementById("clear");
  var answer = document.getElementById("answer");
  var usageLine = document.getElementById("usage");
  var errorBox = document.getElementById("error");
  var statusLine = document.getElementById("status");

  var messages = []; // the conversation so far, as the API takes it
  var busy = false;

  var PLAIN_WORDS = {
    insufficient_quota: "Your organization's balance is too low for this request. Add credit on the Billing page, then try again.",
    rate_limit_exceeded: "Too many requests right now. Wait a moment and try again.",
    model_not_found: "This model is not available any more. Reload the page to see the current models.",
    upstream_timeout: "The model's provider took too long to answer. Try again, or pick another model.",
    upstream_error: "The model's provider failed to answer. Try again, or pick another model.",
    request_too_large: "The conversation is too long. Clear it and start again."
  };

  function showError(text, code) {
    errorBox.textContent = text;
    if (code === "insufficient_quota" && billingUrl) {
      var link = document.createElement("a");
      link.href = billingUrl;
      link.textContent = "Go to Billing";
      errorBox.appendChild(document.createTextNode(" "));
      errorBox.appendChild(link);
    }
    errorBox.hidden = false;
  }

  function errorFromEnvelope(envelope) {
    var error = (envelope && envelope.error) || {};
    return { text: PLAIN_WORDS[error.code] || error.message || "The request failed.", code: error.code };
  }

  function addTurn(role, text) {
    var empty = document.getElementById("answer-empty");
    if (empty) empty.remove();
    var turn = document.createElement("div");
    turn.className = "turn turn-" + role;
    turn.style.margin = "0 0 12px";
    var who = document.createElement("strong");
    who.textContent = role === "user" ? "You" : modelSelect.value;
    var body = document.createElement("div");
    body.style.whiteSpace = "pre-wrap";
    body.textContent = text;
    turn.appendChild(who);
    turn.appendChild(body);
    answer.appendChild(turn);
    return { turn: turn, body: body };
  }

  function showUsage(usage) {
    var parts = [usage.prompt_tokens + " prompt + " + usage.completion_tokens + " completion tokens"];
    if (usage.cost !== undefined) parts.push(String(usage.cost) + " USD");
    usageLine.textContent = "Last answer: " + parts.join(" · ");
    usageLine.hidden = false;
  }

  function setBusy(value) {
    busy = value;
    sendButton.disabled = value;
    clearButton.disabled = value;
    statusLine.textContent = value ? "Answering…" : "";
  }

  // Reads "data: ..." events from the response body and calls onEvent with each payload.
  async function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    for (;;) {
      var step = await reader.read();
      if (step.done) break;
      buffer += decoder.decode(step.value, { stream: true });
      var end;
      while ((end = buffer.indexOf("\n\n")) !== -1) {
        var block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        var data = block.split("\n").filter(function (line) { return line.indexOf("data:") === 0; })
          .map(function (line) { return line.slice(5).replace(/^ /, ""); }).join("\n");
        if (data && onEvent(data) === false) return;
      }
    }
  }

  async function send(text) {
    errorBox.hidden = true;
    messages.push({ role: "user", content: text });
    var userTurn = addTurn("user", text);
    var reply = null;
    var content = "";
    var failed = null;
    var finished = false;
    setBusy(true);
    try {
      var response = await fetch(chatUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken, Accept: "text/event-stream" },
        body: JSON.stringify({ model: modelSelect.value, messages: messages })
      });
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("text/event-stream") === 0) {
        reply = addTurn("assistant", "");
        await readEvents(response, function (data) {
          if (data === "[DONE]") { finished = true; return false; }
          var event;
          try { event = JSON.parse(data); } catch (e) { return; }
          if (event.error) { failed = errorFromEnvelope(event); return false; }
          (event.choices || []).forEach(function (choice) {
            if (choice.delta && typeof choice.delta.content === "string") content += choice.delta.content;
          });
          reply.body.textContent = content;
          if (event.usage) showUsage(event.usage);
        });
        if (!finished && !failed) failed = { text: "The answer was cut off before it ended." };
      } else if (type.indexOf("application/json") === 0) {
        failed = errorFromEnvelope(await response.json());
      } else if (response.status === 403) {
        failed = { text: "Your session's security token is out of date. Reload the page and try again." };
      } else {
        failed = { text: "You are no longer logged in, or the server failed. Reload the page and try again." };
      }
    } catch (e) {
      failed = { text: "Could not reach the server. Check your connection and try again." };
    }
    if (failed) {
      // Keep the conversation as it was before this message, so a retry starts clean.
      messages.pop();
      userTurn.turn.remove();
      if (reply) reply.turn.remove();
      prompt.value = text;
      showError(failed.text, failed.code);
    } else {
      messages.push({ role: "assistant", content: content });
    }
    setBusy(false);
    prompt.focus();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = prompt.value.trim();
    if (!text || busy) return;
    prompt.value = "";
    send(text);
  });

  prompt.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });

  clearButton.addEventListener("click", function () {
    messages = [];
    answer.textContent = "";
    var empty = document.createElement("p");
    empty.className = "helptext";
    empty.id = "answer-empty";
    empty.textContent = "The conversation appears here.";
    answer.appendChild(empty);
    usageLine.hidden = true;
    errorBox.hidden = true;
    prompt.value = "";
    prompt.focus();
  });
})();

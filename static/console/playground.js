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
  var systemPrompt = document.getElementById("system");
  var temperature = document.getElementById("temperature");
  var maxTokens = document.getElementById("max_tokens");
  var answer = document.getElementById("answer");
  var usageLine = document.getElementById("usage");
  var statusLine = document.getElementById("status");

  var messages = []; // the conversation so far (without the system prompt), as the API takes it
  var busy = false;
  var failedTurn = null; // the last message that failed, shown with its error until the next send

  var PLAIN_WORDS = {
    insufficient_quota: "Your organization's balance is too low for this request. Add credit on the Billing page, then try again.",
    rate_limit_exceeded: "Too many requests right now. Wait a moment and try again.",
    upstream_timeout: "The model's provider took too long to answer. Try again, or pick another model.",
    request_too_large: "The conversation is too long. Clear it and start again."
  };
  // Other errors (the provider not configured, a model not found, a setting out of range)
  // come with a message that already says what is wrong; it is shown as it is.

  function errorFromEnvelope(envelope) {
    var error = (envelope && envelope.error) || {};
    return { text: PLAIN_WORDS[error.code] || error.message || "The request failed.", code: error.code };
  }

  // The error under the message it belongs to, in the conversation.
  function showError(turn, failure) {
    var box = document.createElement("p");
    box.className = "message error";
    box.setAttribute("role", "alert");
    box.textContent = failure.text;
    if (failure.code === "insufficient_quota" && billingUrl) {
      var link = document.createElement("a");
      link.href = billingUrl;
      link.textContent = "Go to Billing";
      box.appendChild(document.createTextNode(" "));
      box.appendChild(link);
    }
    turn.appendChild(box);
  }

  function addTurn(role, text) {
    var empty = document.getElementById("answer-empty");
    if (empty) empty.remove();
    var turn = document.createElement("div");
    turn.className = "turn turn-" + role;
    var who = document.createElement("strong");
    who.textContent = role === "user" ? "You" : modelSelect.value;
    var body = document.createElement("div");
    body.className = "turn-text";
    body.textContent = text;
    turn.appendChild(who);
    turn.appendChild(body);
    answer.appendChild(turn);
    return { turn: turn, body: body };
  }

  function showUsage(usage) {
    var parts = [usage.prompt_tokens + " prompt + " + usage.completion_tokens + " completion tokens"];
    if (usage.cost !== undefined) parts.push(plainDecimal(usage.cost) + " USD");
    usageLine.textContent = "Last answer: " + parts.join(" · ");
    usageLine.hidden = false;
  }

  // Costs are whole picodollars; JSON numbers below 1e-6 would print as "9e-7".
  function plainDecimal(value) {
    var text = Number(value).toFixed(12);
    return text.indexOf(".") === -1 ? text : text.replace(/0+$/, "").replace(/\.$/, "");
  }

  function settings() {
    var chosen = {};
    if (temperature.value !== "") chosen.temperature = Number(temperature.value);
    if (maxTokens.value !== "") chosen.max_tokens = Number(maxTokens.value);
    return chosen;
  }

  function conversation() {
    var system = systemPrompt.value.trim();
    return system ? [{ role: "system", content: system }].concat(messages) : messages;
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
    if (failedTurn) { failedTurn.remove(); failedTurn = null; } // this send is its retry
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
        body: JSON.stringify(Object.assign({ model: modelSelect.value, messages: conversation() }, settings()))
      });
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("text/event-stream") === 0) {
        await readEvents(response, function (data) {
          if (data === "[DONE]") { finished = true; return false; }
          var event;
          try { event = JSON.parse(data); } catch (e) { return; }
          if (event.error) { failed = errorFromEnvelope(event); return false; }
          (event.choices || []).forEach(function (choice) {
            if (choice.delta && typeof choice.delta.content === "string") content += choice.delta.content;
          });
          if (content && !reply) reply = addTurn("assistant", ""); // no empty card before the first word
          if (reply) reply.body.textContent = content;
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
      // The message stays on screen with its error, and in the box for a retry; the
      // conversation sent next time is the one before it.
      messages.pop();
      if (reply) reply.turn.remove();
      userTurn.turn.classList.add("turn-failed");
      showError(userTurn.turn, failed);
      failedTurn = userTurn.turn;
      prompt.value = text;
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
    failedTurn = null;
    prompt.value = "";
    prompt.focus();
  });
})();

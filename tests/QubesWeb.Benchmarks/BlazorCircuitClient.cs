using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.AspNetCore.SignalR.Protocol;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace QubesWeb.Benchmarks;

/// <summary>
/// One Blazor Server circuit opened as blazor.web.js opens it, without a browser: GET the page with the session
/// cookie, read the prerendered component markers and the server component state from its HTML, connect to
/// <c>/_blazor</c> over a WebSocket with the console's Origin (protocol blazorpack: MessagePack under another name),
/// <c>StartCircuit(baseUri, uri, "[]", state)</c>, then <c>UpdateRootComponents</c> adding every marker, as the web
/// script's root component manager does on its first update. Render batches are acknowledged and JS interop calls
/// answered (an object reference for <c>import</c>, null for the rest), so the circuit lives as a tab's would.
/// Closing does what a closing tab does: stop the connection and POST <c>/_blazor/disconnect</c> with the circuit id.
/// </summary>
public sealed partial class BlazorCircuitClient : IAsyncDisposable
{
    private readonly Uri _base;
    private readonly string _cookie;
    private readonly HttpClient _http;
    private HubConnection? _hub;
    private string? _circuitId;
    private long _nextObjectId = 1;
    private volatile bool _closing;
    private readonly TaskCompletionSource _firstRender = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public BlazorCircuitClient(Uri baseUri, string cookie, HttpClient http)
    {
        _base = baseUri;
        _cookie = cookie;
        _http = http;
    }

    public long RenderBatches;
    public long JsCalls;
    /// <summary>What went wrong on this circuit: JS.Error from the server, a binding failure, an unexpected close.</summary>
    public readonly List<string> Errors = [];

    [GeneratedRegex(@"<!--Blazor:(\{.*?\})-->", RegexOptions.Singleline)]
    private static partial Regex Marker();

    [GeneratedRegex(@"<!--Blazor-Server-Component-State:([a-zA-Z0-9+/=]+)-->")]
    private static partial Regex State();

    /// <summary>Opens the circuit on <paramref name="path"/> and waits for its first render batch.</summary>
    public async Task OpenAsync(string path, TimeSpan timeout, CancellationToken cancel = default)
    {
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timer.CancelAfter(timeout);
        var pageUri = new Uri(_base, path);
        using var get = new HttpRequestMessage(HttpMethod.Get, pageUri);
        get.Headers.Add("Cookie", _cookie);
        using var response = await _http.SendAsync(get, timer.Token);
        if (response.StatusCode != HttpStatusCode.OK) throw new InvalidOperationException($"GET {path}: {(int)response.StatusCode}");
        var html = await response.Content.ReadAsStringAsync(timer.Token);

        var markers = new JsonArray();
        var ssrId = 0;
        foreach (Match m in Marker().Matches(html))
        {
            var marker = JsonNode.Parse(m.Groups[1].Value)!.AsObject();
            if ((string?)marker["type"] != "server") continue; // end markers carry only the prerender id
            markers.Add(new JsonObject { ["type"] = "add", ["ssrComponentId"] = ++ssrId, ["marker"] = marker });
        }
        if (markers.Count == 0) throw new InvalidOperationException($"GET {path}: no server component markers in the page");
        var state = State().Match(html) is { Success: true } s ? s.Groups[1].Value : "";

        var builder = new HubConnectionBuilder().WithUrl(new Uri(_base, "_blazor"), o =>
        {
            o.Transports = HttpTransportType.WebSockets;
            o.Headers["Cookie"] = _cookie;
            o.Headers["Origin"] = _base.GetLeftPart(UriPartial.Authority);
        });
        builder.Services.RemoveAll<IHubProtocol>();
        builder.Services.AddSingleton<IHubProtocol>(new BlazorPackProtocol(this));
        var hub = _hub = builder.Build();
        // Blazor's own client answers no server pings with more than its keep-alive; the defaults match its.
        hub.On<long, byte[]>("JS.RenderBatch", async (id, _) =>
        {
            Interlocked.Increment(ref RenderBatches);
            _firstRender.TrySetResult();
            await hub.SendAsync("OnRenderCompleted", id, null);
        });
        hub.On<long, string, string, int, long, int>("JS.BeginInvokeJS", async (handle, identifier, _, resultType, _, _) =>
        {
            Interlocked.Increment(ref JsCalls);
            if (handle == 0) return;
            // resultType 1 is a JS object reference (e.g. an imported module); everything else gets null.
            object? result = resultType == 1 ? new Dictionary<string, long> { ["__jsObjectId"] = Interlocked.Increment(ref _nextObjectId) } : null;
            await hub.SendAsync("EndInvokeJSFromDotNet", handle, true, JsonSerializer.Serialize(new object?[] { handle, true, result }));
        });
        hub.On<string>("JS.Error", e => AddError("JS.Error: " + e));
        hub.On<long>("JS.EndUpdateRootComponents", _ => { });
        hub.On<string>("JS.EndInvokeDotNet", _ => { });
        hub.On<int, string>("JS.AttachComponent", (_, _) => { });
        hub.Closed += e =>
        {
            if (!_closing) AddError("connection closed: " + (e?.Message ?? "by the server"));
            return Task.CompletedTask;
        };

        await hub.StartAsync(timer.Token);
        _circuitId = await hub.InvokeAsync<string?>("StartCircuit", _base.ToString(), pageUri.ToString(), "[]", state, timer.Token);
        if (string.IsNullOrEmpty(_circuitId)) throw new InvalidOperationException($"StartCircuit on {path} returned no circuit");
        var batch = new JsonObject { ["batchId"] = 1, ["operations"] = markers };
        await hub.SendAsync("UpdateRootComponents", batch.ToJsonString(), state, timer.Token);
        await _firstRender.Task.WaitAsync(timer.Token);
    }

    /// <summary>As a closing tab: the connection stops, and the disconnect beacon tells the server to drop the circuit now.</summary>
    public async Task CloseAsync()
    {
        _closing = true;
        if (_hub is not null) await _hub.StopAsync();
        if (_circuitId is null) return;
        using var post = new HttpRequestMessage(HttpMethod.Post, new Uri(_base, "_blazor/disconnect"))
        {
            Content = new FormUrlEncodedContent([new("circuitId", _circuitId)]),
        };
        post.Headers.Add("Cookie", _cookie);
        post.Headers.Add("Origin", _base.GetLeftPart(UriPartial.Authority));
        using var response = await _http.SendAsync(post);
        if (!response.IsSuccessStatusCode) AddError($"POST _blazor/disconnect: {(int)response.StatusCode}");
    }

    /// <summary>Cuts the connection without the beacon, as a crashed tab or a lost network would.</summary>
    public async Task AbortAsync()
    {
        _closing = true;
        if (_hub is not null) await _hub.DisposeAsync();
    }

    private void AddError(string e)
    {
        lock (Errors) Errors.Add(e);
    }

    public async ValueTask DisposeAsync()
    {
        _closing = true;
        if (_hub is not null) await _hub.DisposeAsync();
    }

    /// <summary>blazorpack is SignalR's MessagePack protocol under Blazor's name; binding failures count as errors.</summary>
    private sealed class BlazorPackProtocol(BlazorCircuitClient owner) : IHubProtocol
    {
        private readonly MessagePackHubProtocol _inner = new();
        public string Name => "blazorpack";
        public int Version => _inner.Version;
        public TransferFormat TransferFormat => TransferFormat.Binary;
        public bool IsVersionSupported(int version) => _inner.IsVersionSupported(version);
        public ReadOnlyMemory<byte> GetMessageBytes(HubMessage message) => _inner.GetMessageBytes(message);
        public void WriteMessage(HubMessage message, IBufferWriter<byte> output) => _inner.WriteMessage(message, output);

        public bool TryParseMessage(ref ReadOnlySequence<byte> input, IInvocationBinder binder, [NotNullWhen(true)] out HubMessage? message)
        {
            if (!_inner.TryParseMessage(ref input, binder, out message)) return false;
            if (message is InvocationBindingFailureMessage failure)
                owner.AddError($"could not bind {failure.Target}: {failure.BindingFailure.SourceException.Message}");
            return true;
        }
    }
}

using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using Microsoft.Extensions.Options;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Libvirt;
using QubesWeb.Services.Estate;

namespace QubesWeb.Services.Consoles;

/// <summary>Why a console socket names a qube that has no serial console to relay; <see cref="None"/> when it has one.</summary>
public enum ConsoleTargetProblem
{
    None,
    InvalidName,
    NoSuchQube,

    /// <summary>dom0: the console runs in it; it has no serial console of a domain.</summary>
    AdminVm,
}

/// <summary>
/// The close codes a serial console socket ends with (WebSocket's private range, 4000-4999), so the page can show
/// the reason and offer what fits (Take over, Start) without parsing the sentence that comes with it.
/// </summary>
public static class ConsoleClose
{
    public const int Ended = 4000;
    public const int Busy = 4001;
    public const int NotRunning = 4002;
    public const int Unavailable = 4003;
    public const int TakenOver = 4004;

    /// <summary>The sentence the page shows for a busy console, next to its Take over button.</summary>
    public const string BusyReason = "Someone else has this console open.";
}

/// <summary>
/// Qubes' serial consoles in the browser: whether this hypervisor offers them, which qube a socket may name, and the
/// relay between a browser's WebSocket and the qube's console stream (one viewer at a time, as virsh: a second one is
/// refused unless it takes the console over, which ends the first one's socket with that reason).
/// </summary>
public sealed class SerialConsoles(IHypervisor hypervisor, EstateMonitor estate, QubesWeb.Services.Qubes.QubeQueries qubes,
    IOptions<HypervisorOptions> options, ILogger<SerialConsoles> log)
{
    /// <summary>What a close frame's reason may hold at most (RFC 6455: a control frame's payload is 125 bytes, 2 are the code).</summary>
    public const int MaxReasonBytes = 123;

    /// <summary>The address of a qube's console socket (the web host maps it), relative to the console's base.</summary>
    public static string SocketPath(string name) => $"qubes/{Uri.EscapeDataString(name)}/console/serial";

    private readonly ConcurrentDictionary<string, ConcurrentDictionary<Relay, byte>> _relays = new(StringComparer.Ordinal);

    /// <summary>libvirt's test driver (the demo) runs no guest and has no consoles.</summary>
    public bool Offered => !options.Value.Uri.StartsWith("test:", StringComparison.OrdinalIgnoreCase);

    /// <summary>Why there is no console for <paramref name="name"/> on this hypervisor, or null when there are consoles.</summary>
    public string? NotOfferedReason(string name) =>
        Offered ? null : $"The demo runs no guest (libvirt's test driver), so {name} has no console to open.";

    /// <summary>Whether <paramref name="name"/> is a qube whose console a socket may ask for.</summary>
    public async Task<ConsoleTargetProblem> CheckTargetAsync(string? name, CancellationToken ct = default)
    {
        if (QubeRules.NameProblems(name).Count > 0) return ConsoleTargetProblem.InvalidName;
        var qube = await qubes.FindAsync(name!, ct);
        if (qube is null) return ConsoleTargetProblem.NoSuchQube;
        return qube.Class == QubeClass.AdminVM ? ConsoleTargetProblem.AdminVm : ConsoleTargetProblem.None;
    }

    /// <summary>
    /// Relays the console of <paramref name="name"/> (checked with <see cref="CheckTargetAsync"/>) over an accepted
    /// <paramref name="socket"/>: guest output as binary frames, anything the browser sends as keystrokes. Returns once
    /// the socket is closed, with a <see cref="ConsoleClose"/> code and a reason when the console side ended it.
    /// </summary>
    public async Task RelayAsync(WebSocket socket, string name, bool force, CancellationToken ct)
    {
        if (NotOfferedReason(name) is { } none)
        {
            await CloseAsync(socket, ConsoleClose.Unavailable, none);
            return;
        }
        if (estate.StateOf(name) != RunState.Running)
        {
            await CloseAsync(socket, ConsoleClose.NotRunning, $"{name} is not running.");
            return;
        }

        // Only libvirt opens consoles; the other hypervisor is the UI tests' in-memory double.
        if (hypervisor is not LibvirtHypervisor libvirt)
        {
            await CloseAsync(socket, ConsoleClose.Unavailable, $"This hypervisor offers no console for {name}.");
            return;
        }

        var relay = new Relay();
        var mine = _relays.GetOrAdd(name, _ => new());
        // Marked before the take-over, so the viewer it ends is told why rather than "ended".
        var others = force ? mine.Keys.ToList() : [];
        foreach (var other in others) other.TakenOver = true;
        StreamPipe pipe;
        try
        {
            pipe = await Task.Run(() => libvirt.OpenConsole(name, force), ct);
        }
        catch (Exception e) when (e is RefusalException or OperationCanceledException)
        {
            // Nothing was taken over: the others end, if they do, for their own reasons.
            foreach (var other in others) other.TakenOver = false;
            if (e is ConsoleBusyException) await CloseAsync(socket, ConsoleClose.Busy, ConsoleClose.BusyReason);
            else if (e is RefusalException) await CloseAsync(socket, ConsoleClose.Unavailable, e.Message);
            return;
        }

        mine[relay] = 0;
        log.LogInformation("Serial console of {Name} opened{Force}.", name, force ? " (taken over)" : "");
        try
        {
            await RunAsync(socket, pipe, name, relay, ct);
        }
        finally
        {
            mine.TryRemove(relay, out _);
            try { pipe.Abort(); }
            catch (LibvirtException) { /* already ended: nothing left to abort */ }
            pipe.Dispose();
            log.LogInformation("Serial console of {Name} closed.", name);
        }
    }

    private async Task RunAsync(WebSocket socket, StreamPipe pipe, string name, Relay relay, CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var toBrowser = GuestToBrowserAsync(pipe, socket, stop.Token);
        var toGuest = BrowserToGuestAsync(socket, pipe, stop.Token);
        var first = await Task.WhenAny(toBrowser, toGuest);

        if (first == toGuest)
        {
            // The browser closed (or broke) the socket, or sending to the guest failed: stop reading the guest.
            await stop.CancelAsync();
            await Quietly(toBrowser);
            var guestFailed = toGuest.IsFaulted && toGuest.Exception?.InnerException is LibvirtException or ObjectDisposedException;
            if (socket.State is WebSocketState.CloseReceived or WebSocketState.Open)
                await CloseAsync(socket, guestFailed ? ConsoleClose.Ended : (int)WebSocketCloseStatus.NormalClosure,
                    guestFailed ? await EndedReasonAsync(name, relay) : "");
            return;
        }

        // The guest's side ended: a take-over, the domain stopping, or libvirt's connection going.
        await CloseAsync(socket, relay.TakenOver ? ConsoleClose.TakenOver : ConsoleClose.Ended, await EndedReasonAsync(name, relay));
        // The browser answers the close; a browser that does not is cut after a while.
        try
        {
            await Quietly(toGuest).WaitAsync(TimeSpan.FromSeconds(10), ct);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            socket.Abort();
        }
        await stop.CancelAsync();
    }

    private async Task<string> EndedReasonAsync(string name, Relay relay)
    {
        if (relay.TakenOver) return "Someone took this console over.";
        try
        {
            // The stream may end a moment before libvirt's lifecycle event says the domain stopped.
            await estate.WaitForStateAsync(name, s => s != RunState.Running, TimeSpan.FromSeconds(3), CancellationToken.None);
            return $"{name} stopped: its console ended.";
        }
        catch (Exception e) when (e is TimeoutException or RefusalException)
        {
            return $"The console of {name} ended.";
        }
    }

    private static async Task GuestToBrowserAsync(StreamPipe pipe, WebSocket socket, CancellationToken ct)
    {
        var buffer = new byte[16 * 1024];
        int n;
        while ((n = await pipe.ReadAsync(buffer, ct)) > 0)
            await socket.SendAsync(buffer.AsMemory(0, n), WebSocketMessageType.Binary, endOfMessage: true, ct);
    }

    private static async Task BrowserToGuestAsync(WebSocket socket, StreamPipe pipe, CancellationToken ct)
    {
        var buffer = new byte[16 * 1024];
        while (true)
        {
            var got = await socket.ReceiveAsync(buffer.AsMemory(), ct);
            if (got.MessageType == WebSocketMessageType.Close) return;
            // Text frames too: keystrokes as UTF-8, which is what a terminal sends.
            if (got.Count > 0) await pipe.WriteAsync(buffer.AsMemory(0, got.Count), ct);
        }
    }

    private static async Task Quietly(Task task)
    {
        try { await task; }
        catch (Exception) { /* its failure is what ended the relay, or the cancellation that stopped it */ }
    }

    /// <summary>Closes with a code and a reason cut to what a close frame holds; a socket already gone is left.</summary>
    private static async Task CloseAsync(WebSocket socket, int code, string reason)
    {
        if (socket.State is not (WebSocketState.Open or WebSocketState.CloseReceived)) return;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await socket.CloseOutputAsync((WebSocketCloseStatus)code, Fit(reason), timeout.Token);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            socket.Abort();
        }
    }

    /// <summary>The reason cut to <see cref="MaxReasonBytes"/> of UTF-8, on a character boundary.</summary>
    public static string Fit(string reason)
    {
        if (Encoding.UTF8.GetByteCount(reason) <= MaxReasonBytes) return reason;
        var end = reason.Length;
        while (end > 0 && Encoding.UTF8.GetByteCount(reason.AsSpan(0, end)) > MaxReasonBytes - 3) end--;
        if (end > 0 && char.IsHighSurrogate(reason[end - 1])) end--;
        return reason[..end] + "...";
    }

    private sealed class Relay
    {
        public volatile bool TakenOver;
    }
}

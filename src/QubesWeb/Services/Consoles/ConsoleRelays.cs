using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using Microsoft.Extensions.Options;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;

namespace QubesWeb.Services.Consoles;

/// <summary>
/// What the serial and the graphical console sockets share: whether this hypervisor offers consoles, which qube a
/// socket may name, one viewer at a time with take-over, and the splice between a browser's WebSocket and the qube's
/// end of the console (binary frames both ways, nothing parsed), ending with a <see cref="ConsoleClose"/> code.
/// </summary>
public abstract class ConsoleRelays(IHypervisor hypervisor, EstateMonitor estate, QubesWeb.Services.Qubes.QubeQueries qubes,
    IOptions<HypervisorOptions> options, ILogger log)
{
    /// <summary>What a close frame's reason may hold at most (RFC 6455: a control frame's payload is 125 bytes, 2 are the code).</summary>
    public const int MaxReasonBytes = 123;

    private readonly ConcurrentDictionary<string, Dictionary<Relay, byte>> _relays = new(StringComparer.Ordinal);

    /// <summary>The console's name in sentences: "serial console", "graphical console".</summary>
    public abstract string What { get; }

    /// <summary>
    /// True when this relay itself must refuse a second viewer (libvirt does it for serial consoles; a VNC server
    /// lets clients share its display).
    /// </summary>
    protected abstract bool RefusesSecondViewer { get; }

    /// <summary>Opens the qube's end of the console; a <see cref="ConsoleBusyException"/> when someone else holds it.</summary>
    protected abstract IGuestEnd Open(LibvirtHypervisor libvirt, string name, bool force);

    /// <summary>
    /// Whether a frame the browser sent is the user's own doing (a key, the mouse), which keeps their session alive
    /// as a click on a page does; a viewer's own traffic (a VNC client asks for screen updates all the time) does not.
    /// </summary>
    public abstract bool IsUserInput(ReadOnlySpan<byte> frame);

    /// <summary>libvirt's test driver (the demo) runs no guest and has no consoles.</summary>
    public bool Offered => !options.Value.Uri.StartsWith("test:", StringComparison.OrdinalIgnoreCase);

    /// <summary>Why there is no such console for <paramref name="name"/> on this hypervisor, or null when there is.</summary>
    public abstract string? NotOfferedReason(string name);

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
    /// <paramref name="socket"/>: the qube's bytes as binary frames, and the bytes of every frame the browser sends to
    /// the qube. Returns once the socket is closed, with a <see cref="ConsoleClose"/> code and a reason when the
    /// console side ended it. <paramref name="userActive"/> is called for each frame of user input (<see cref="IsUserInput"/>).
    /// </summary>
    public async Task RelayAsync(WebSocket socket, string name, bool force, CancellationToken ct, Action? userActive = null)
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
            await CloseAsync(socket, ConsoleClose.Unavailable, $"This hypervisor offers no {What} for {name}.");
            return;
        }

        var relay = new Relay();
        var mine = _relays.GetOrAdd(name, _ => new());
        List<Relay> others = [];
        bool busy;
        lock (mine)
        {
            busy = !force && RefusesSecondViewer && mine.Count > 0;
            if (!busy)
            {
                // Marked before the take-over, so the viewer it ends is told why rather than "ended".
                if (force) others = mine.Keys.ToList();
                foreach (var other in others) other.TakenOver = true;
                mine[relay] = 0;
            }
        }
        if (busy)
        {
            await CloseAsync(socket, ConsoleClose.Busy, ConsoleClose.BusyReason);
            return;
        }

        IGuestEnd end;
        try
        {
            end = await Task.Run(() => Open(libvirt, name, force), ct);
        }
        catch (Exception e) when (e is RefusalException or OperationCanceledException)
        {
            // Nothing was taken over: the others end, if they do, for their own reasons.
            lock (mine)
            {
                mine.Remove(relay);
                foreach (var other in others) other.TakenOver = false;
            }
            if (e is ConsoleBusyException) await CloseAsync(socket, ConsoleClose.Busy, ConsoleClose.BusyReason);
            else if (e is RefusalException) await CloseAsync(socket, ConsoleClose.Unavailable, e.Message);
            return;
        }

        relay.End = end;
        foreach (var other in others) other.End?.Cut();
        log.LogInformation("{What} of {Name} opened{Force}.", What, name, force ? " (taken over)" : "");
        try
        {
            await RunAsync(socket, end, name, relay, userActive, ct);
        }
        finally
        {
            lock (mine) mine.Remove(relay);
            end.Dispose();
            log.LogInformation("{What} of {Name} closed.", What, name);
        }
    }

    private async Task RunAsync(WebSocket socket, IGuestEnd end, string name, Relay relay, Action? userActive, CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var toBrowser = GuestToBrowserAsync(end, socket, stop.Token);
        var toGuest = BrowserToGuestAsync(socket, end, userActive, stop.Token);
        var first = await Task.WhenAny(toBrowser, toGuest);

        if (first == toGuest)
        {
            // The browser closed (or broke) the socket, or sending to the guest failed: stop reading the guest.
            await stop.CancelAsync();
            await Quietly(toBrowser);
            var guestFailed = toGuest.IsFaulted && toGuest.Exception?.InnerException is { } e && end.IsFailure(e);
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

    private static async Task GuestToBrowserAsync(IGuestEnd end, WebSocket socket, CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = await end.ReadAsync(buffer, ct)) > 0)
            await socket.SendAsync(buffer.AsMemory(0, n), WebSocketMessageType.Binary, endOfMessage: true, ct);
    }

    private async Task BrowserToGuestAsync(WebSocket socket, IGuestEnd end, Action? userActive, CancellationToken ct)
    {
        var buffer = new byte[16 * 1024];
        while (true)
        {
            var got = await socket.ReceiveAsync(buffer.AsMemory(), ct);
            if (got.MessageType == WebSocketMessageType.Close) return;
            if (got.Count == 0) continue;
            if (userActive is not null && IsUserInput(buffer.AsSpan(0, got.Count))) userActive();
            // Text frames too: keystrokes as UTF-8, which is what a terminal sends.
            await end.WriteAsync(buffer.AsMemory(0, got.Count), ct);
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

    /// <summary>The qube's end of a console: bytes in and out, one reader and one writer at a time.</summary>
    protected interface IGuestEnd : IDisposable
    {
        /// <summary>Bytes read, waiting until some come; 0 once the console ended.</summary>
        ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct);

        ValueTask WriteAsync(ReadOnlyMemory<byte> bytes, CancellationToken ct);

        /// <summary>Whether <paramref name="e"/>, thrown by a write, means the console ended (not the browser).</summary>
        bool IsFailure(Exception e);

        /// <summary>Ends this viewer's console because another took it over: its reads end.</summary>
        void Cut();
    }

    private sealed class Relay
    {
        public volatile bool TakenOver;
        public volatile IGuestEnd? End;
    }
}

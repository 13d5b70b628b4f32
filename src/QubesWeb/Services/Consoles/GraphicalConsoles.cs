using System.Net.Sockets;
using Microsoft.Extensions.Options;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;

namespace QubesWeb.Services.Consoles;

/// <summary>
/// Qubes' graphical consoles in the browser: the relay between a browser's WebSocket (noVNC) and the qube's VNC
/// display, reached through libvirt (virDomainOpenGraphicsFD: no socket path, no TCP port). RFB goes through as it
/// is, unparsed. A VNC server lets clients share a display, so one viewer at a time is this relay's own rule: a
/// second one is refused unless it takes the console over, which ends the first one's socket with that reason.
/// </summary>
public sealed class GraphicalConsoles(IHypervisor hypervisor, EstateMonitor estate, QubesWeb.Services.Qubes.QubeQueries qubes,
    IOptions<HypervisorOptions> options, ILogger<GraphicalConsoles> log)
    : ConsoleRelays(hypervisor, estate, qubes, options, log)
{
    /// <summary>The address of a qube's graphical console socket, relative to the console's base.</summary>
    public static string SocketPath(string name) => $"qubes/{Uri.EscapeDataString(name)}/console/vnc";

    public override string What => "graphical console";

    protected override bool RefusesSecondViewer => true;

    /// <summary>
    /// RFB's key (4) and pointer (5) events, by a frame's first byte: noVNC sends each of its messages in a frame of
    /// its own. The handshake's bytes (the version string, the security type 1, the shared flag) and the viewer's own
    /// messages (pixel format 0, encodings 2, update requests 3, sent after every update) are not the user's.
    /// </summary>
    public override bool IsUserInput(ReadOnlySpan<byte> frame) => frame.Length > 0 && frame[0] is RfbKeyEvent or RfbPointerEvent;

    private const byte RfbKeyEvent = 4, RfbPointerEvent = 5;

    public override string? NotOfferedReason(string name) =>
        Offered ? null : $"The demo runs no guest (libvirt's test driver), so {name} has no screen: there is no graphical console to open.";

    protected override IGuestEnd Open(LibvirtHypervisor libvirt, string name, bool force) => new SocketEnd(libvirt.OpenGraphics(name));

    private sealed class SocketEnd(Socket socket) : IGuestEnd
    {
        public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct) => socket.ReceiveAsync(buffer, SocketFlags.None, ct);

        public async ValueTask WriteAsync(ReadOnlyMemory<byte> bytes, CancellationToken ct) =>
            await socket.SendAsync(bytes, SocketFlags.None, ct);

        public bool IsFailure(Exception e) => e is SocketException or ObjectDisposedException;

        // Its reads end (0 bytes), as when qemu closes the display.
        public void Cut()
        {
            try { socket.Shutdown(SocketShutdown.Both); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { /* already gone */ }
        }

        public void Dispose() => socket.Dispose();
    }
}

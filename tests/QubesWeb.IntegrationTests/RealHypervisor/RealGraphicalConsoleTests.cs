// A qube's graphical console against the lane's small real guest that a real libvirtd runs: the binding's
// virDomainOpenGraphicsFD reaches its VNC server (RFB from the first byte), and the console's own socket relays it as
// the page's noVNC uses it, session and Origin included, one viewer at a time.
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using QubesWeb.Hosting.SignIn;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Libvirt;
using QubesWeb.Services.Consoles;
using QubesWeb.Services.Estate;

namespace QubesWeb.IntegrationTests.RealHypervisor;

public sealed class RealGraphicalConsoleTests(RealLibvirtd daemon, TestGuest guest) : IClassFixture<RealLibvirtd>, IClassFixture<TestGuest>
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(120);
    private static readonly byte[] Banner = "RFB 003.008\n"u8.ToArray();

    [Fact]
    public async Task The_display_is_reached_through_libvirt_and_through_the_socket_one_viewer_at_a_time()
    {
        _ = daemon; // started by the fixture
        var name = "qwt-vnc-" + Guid.NewGuid().ToString("N")[..10];
        await using var host = await ConsoleHost.StartAsync(RealLibvirtd.Uri, demo: false);
        using var connect = Connect.Open(RealLibvirtd.Uri);
        try
        {
            using var domain = RealGuestQube.Define(connect, guest, name);
            await RealGuestQube.AddToInventoryAsync(host, name, domain);

            // Halted: libvirt has no display to give, and the socket opens and says so (the page offers Start).
            Assert.Throws<LibvirtException>(() => domain.OpenGraphicsFd(0, DomainOpenGraphicsFlags.SkipAuth));
            using (var halted = await SerialConsoleClient.ConnectAsync(host, name, console: "vnc"))
            {
                Assert.Equal(HttpStatusCode.SwitchingProtocols, halted.Status);
                await halted.ClosedAsync();
                Assert.Equal((WebSocketCloseStatus)ConsoleClose.NotRunning, halted.CloseStatus);
                Assert.Equal($"{name} is not running.", halted.CloseReason);
            }

            domain.Create();
            await host.Get<EstateMonitor>().WaitForStateAsync(name, s => s == RunState.Running, Boot, CancellationToken.None);

            // The binding: a descriptor connected to qemu's VNC server, which speaks first.
            using (var display = new NetworkStream(new Socket(new SafeSocketHandle(domain.OpenGraphicsFd(0, DomainOpenGraphicsFlags.SkipAuth), ownsHandle: true)), ownsSocket: true))
            {
                var got = new byte[Banner.Length];
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                await display.ReadExactlyAsync(got, timeout.Token);
                Assert.Equal(Encoding.ASCII.GetString(Banner), Encoding.ASCII.GetString(got));
            }

            // The relay: the banner, then a handshake both ways up to the server's init, which names the screen's size.
            using var first = await SerialConsoleClient.ConnectAsync(host, name, console: "vnc");
            Assert.Equal(HttpStatusCode.SwitchingProtocols, first.Status);
            _ = first.StartReading();
            await Eventually.UntilAsync(() => first.Bytes.Length >= Banner.Length, "the RFB banner through the socket", TimeSpan.FromSeconds(30), () => first.Text);
            Assert.Equal(Encoding.ASCII.GetString(Banner), Encoding.ASCII.GetString(first.Bytes));
            await first.SendAsync(Banner);
            // Security types: a count and the types; libvirt's SkipAuth leaves qemu's "None" (1).
            await Eventually.UntilAsync(() => first.Bytes.Length >= Banner.Length + 2, "the security types", TimeSpan.FromSeconds(30), () => Convert.ToHexString(first.Bytes));
            Assert.Contains((byte)1, first.Bytes.AsSpan(Banner.Length + 1, first.Bytes[Banner.Length]).ToArray());
            await first.SendAsync([1]);
            await Eventually.UntilAsync(() => first.Bytes.Length >= Banner.Length + 2 + 4, "the security result", TimeSpan.FromSeconds(30), () => Convert.ToHexString(first.Bytes));
            await first.SendAsync([1]); // ClientInit: shared
            var init = Banner.Length + 1 + first.Bytes[Banner.Length] + 4;
            await Eventually.UntilAsync(() => first.Bytes.Length >= init + 24, "the server's init", TimeSpan.FromSeconds(30), () => Convert.ToHexString(first.Bytes));
            Assert.Equal(0u, BinaryPrimitives.ReadUInt32BigEndian(first.Bytes.AsSpan(init - 4)));
            var (width, height) = (BinaryPrimitives.ReadUInt16BigEndian(first.Bytes.AsSpan(init)), BinaryPrimitives.ReadUInt16BigEndian(first.Bytes.AsSpan(init + 2)));
            Assert.True(width >= 640 && height >= 400, $"a {width}x{height} screen");

            // The viewer asking for the screen is not the user: their session is not kept alive by it. A pointer
            // event is: it counts as activity, as a click in a page does.
            var session = host.Get<SessionStore>().All().Single(s => s.Id == first.SessionId);
            var seen = session.LastSeen;
            var before = first.Bytes.Length;
            await first.SendAsync([3, 0, 0, 0, 0, 0, (byte)(width >> 8), (byte)width, (byte)(height >> 8), (byte)height]);
            await Eventually.UntilAsync(() => first.Bytes.Length > before, "the screen update asked for", TimeSpan.FromSeconds(30), () => Convert.ToHexString(first.Bytes));
            Assert.Equal(seen, session.LastSeen);
            await first.SendAsync([5, 0, 0, 10, 0, 10]);
            await Eventually.UntilAsync(() => session.LastSeen > seen, "the pointer event to count as the user's activity", TimeSpan.FromSeconds(30));

            // A second viewer is refused with the page's sentence...
            using var second = await SerialConsoleClient.ConnectAsync(host, name, console: "vnc");
            Assert.Equal(HttpStatusCode.SwitchingProtocols, second.Status);
            await second.ClosedAsync();
            Assert.Equal((WebSocketCloseStatus)ConsoleClose.Busy, second.CloseStatus);
            Assert.Equal(ConsoleClose.BusyReason, second.CloseReason);
            Assert.Empty(second.Bytes);

            // ...and taking over ends the first viewer's socket, saying why; the new one gets the display.
            using var third = await SerialConsoleClient.ConnectAsync(host, name, force: true, console: "vnc");
            Assert.Equal(HttpStatusCode.SwitchingProtocols, third.Status);
            _ = third.StartReading();
            await first.ClosedAsync();
            Assert.Equal((WebSocketCloseStatus)ConsoleClose.TakenOver, first.CloseStatus);
            Assert.Equal("Someone took this console over.", first.CloseReason);
            await Eventually.UntilAsync(() => third.Bytes.Length >= Banner.Length, "the banner for the new viewer", TimeSpan.FromSeconds(30), () => third.Text);
            Assert.Equal(Encoding.ASCII.GetString(Banner), third.Text);

            // Signing out cuts the socket and lets go of the display: the next viewer gets it without taking over.
            host.Get<SessionStore>().End(third.SessionId!);
            await Assert.ThrowsAnyAsync<WebSocketException>(third.ClosedAsync);
            SerialConsoleClient? fourth = null;
            await Eventually.UntilAsync(async () =>
            {
                fourth?.Dispose();
                fourth = await SerialConsoleClient.ConnectAsync(host, name, console: "vnc");
                _ = fourth.StartReading();
                await Eventually.WithinAsync(() => fourth.Bytes.Length >= Banner.Length || fourth.CloseStatus is not null, TimeSpan.FromSeconds(30));
                return fourth.Bytes.Length >= Banner.Length;
            }, "a viewer without force to get the display once the cut one let go of it", TimeSpan.FromSeconds(60), () => $"closed: {fourth?.CloseStatus} {fourth?.CloseReason}");

            // The guest stops: the socket ends, saying so.
            domain.Destroy();
            await fourth!.ClosedAsync();
            Assert.Equal((WebSocketCloseStatus)ConsoleClose.Ended, fourth.CloseStatus);
            Assert.Equal($"{name} stopped: its console ended.", fourth.CloseReason);
            fourth.Dispose();
        }
        finally
        {
            await host.StopAsync();
            RealLibvirtd.Remove(name);
        }
    }
}

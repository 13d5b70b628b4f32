// A qube's serial console through the console's own WebSocket, as its page uses it, against the lane's small real
// guest (a shell on ttyS0) that a real libvirtd runs: the whole relay, session and Origin included.
using System.Net;
using System.Net.WebSockets;
using System.Text.RegularExpressions;
using QubesWeb.Hosting.SignIn;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Libvirt;
using QubesWeb.Services.Consoles;
using QubesWeb.Services.Estate;

namespace QubesWeb.IntegrationTests.RealHypervisor;

public sealed class RealConsoleSocketTests(RealLibvirtd daemon, TestGuest guest) : IClassFixture<RealLibvirtd>, IClassFixture<TestGuest>
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task Through_the_socket_the_guest_shell_answers_a_second_viewer_is_refused_and_force_takes_over()
    {
        _ = daemon; // started by the fixture
        var name = "qwt-socket-" + Guid.NewGuid().ToString("N")[..10];
        await using var host = await ConsoleHost.StartAsync(RealLibvirtd.Uri, demo: false);
        using var connect = Connect.Open(RealLibvirtd.Uri);
        try
        {
            using var domain = RealGuestQube.Define(connect, guest, name);
            await RealGuestQube.AddToInventoryAsync(host, name, domain);

            // Halted: the socket opens and says so (the page offers Start).
            using (var halted = await SerialConsoleClient.ConnectAsync(host, name))
            {
                Assert.Equal(HttpStatusCode.SwitchingProtocols, halted.Status);
                await halted.ClosedAsync();
                Assert.Equal((WebSocketCloseStatus)ConsoleClose.NotRunning, halted.CloseStatus);
                Assert.Equal($"{name} is not running.", halted.CloseReason);
            }

            domain.Create();
            await host.Get<EstateMonitor>().WaitForStateAsync(name, s => s == RunState.Running, Boot, CancellationToken.None);
            using var first = await SerialConsoleClient.ConnectAsync(host, name);
            Assert.Equal(HttpStatusCode.SwitchingProtocols, first.Status);
            _ = first.StartReading();
            await Eventually.UntilAsync(() => first.Text.Contains("test guest: shell on ttyS0"), "the shell on the serial console", Boot, () => first.Text);

            // Typed as xterm.js sends it; the shell's answer, not the echo of the line typed (which says 6*7).
            var session = host.Get<SessionStore>().All().Single(s => s.Id == first.SessionId);
            var seenBeforeTyping = session.LastSeen;
            await first.SendAsync("echo $((6*7))\r");
            await Eventually.UntilAsync(() => Regex.IsMatch(first.Text, @"(^|\n)42\r?\n"), "the shell on ttyS0 to answer 42", TimeSpan.FromSeconds(60), () => first.Text);
            // Typing is the user's activity: their session does not expire while they work in the console alone.
            Assert.True(session.LastSeen > seenBeforeTyping, $"the session was last seen at {session.LastSeen:O}, before the typing");

            // A second viewer is refused with the page's sentence...
            using var second = await SerialConsoleClient.ConnectAsync(host, name);
            Assert.Equal(HttpStatusCode.SwitchingProtocols, second.Status);
            await second.ClosedAsync();
            Assert.Equal((WebSocketCloseStatus)ConsoleClose.Busy, second.CloseStatus);
            Assert.Equal(ConsoleClose.BusyReason, second.CloseReason);

            // ...and taking over ends the first viewer's socket, saying why.
            using var third = await SerialConsoleClient.ConnectAsync(host, name, force: true);
            Assert.Equal(HttpStatusCode.SwitchingProtocols, third.Status);
            _ = third.StartReading();
            await first.ClosedAsync();
            Assert.Equal((WebSocketCloseStatus)ConsoleClose.TakenOver, first.CloseStatus);
            Assert.Equal("Someone took this console over.", first.CloseReason);
            await third.SendAsync("echo forced-$((40+2))\r");
            await Eventually.UntilAsync(() => third.Text.Contains("forced-42"), "the shell to answer the new viewer", TimeSpan.FromSeconds(60), () => third.Text);

            // Signing out cuts the socket, as it cuts the session's pages, and lets go of the console: the next viewer
            // gets it without taking over.
            host.Get<SessionStore>().End(third.SessionId!);
            await Assert.ThrowsAnyAsync<WebSocketException>(third.ClosedAsync);
            // (The cut socket's relay lets go a moment after the cut: a viewer that comes in between is told it is busy.)
            SerialConsoleClient? fourth = null;
            await Eventually.UntilAsync(async () =>
            {
                fourth?.Dispose();
                fourth = await SerialConsoleClient.ConnectAsync(host, name);
                _ = fourth.StartReading();
                try
                {
                    await fourth.SendAsync("echo again-$((40+2))\r");
                }
                catch (Exception e) when (e is WebSocketException or InvalidOperationException)
                {
                    return false; // closed as busy already
                }
                await Eventually.WithinAsync(() => fourth.Text.Contains("again-42") || fourth.CloseStatus is not null, TimeSpan.FromSeconds(30));
                return fourth.Text.Contains("again-42");
            }, "a viewer without force to get the console once the cut one let go of it", TimeSpan.FromSeconds(60), () => $"{fourth?.Text} (closed: {fourth?.CloseStatus} {fourth?.CloseReason})");

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

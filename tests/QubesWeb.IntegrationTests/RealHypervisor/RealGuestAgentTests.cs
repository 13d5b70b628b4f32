// The guest agent client through libvirt (virDomainQemuAgentCommand) against a real qemu-ga inside a real guest that
// a real libvirtd runs: the transport the console uses for qubes on a host, which the test driver cannot exercise.
using QubesWeb.Hypervisor.Agent;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Libvirt;
using QubesWeb.Services.Updates;

namespace QubesWeb.IntegrationTests.RealHypervisor;

public sealed class RealGuestAgentTests(RealLibvirtd daemon, TestGuest guest) : IClassFixture<RealLibvirtd>, IClassFixture<TestGuest>
{
    /// <summary>Software emulation boots the guest in about 6 s here; a loaded CI machine gets ample room.</summary>
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Through_libvirt_the_agent_runs_programs_reports_their_failures_and_shuts_the_guest_down()
    {
        _ = daemon; // started by the fixture
        var name = "qwt-agent-" + Guid.NewGuid().ToString("N")[..10];
        using var connect = Connect.Open(RealLibvirtd.Uri);
        using var hypervisor = RealLibvirtd.OpenHypervisor();
        try
        {
            using var domain = connect.DefineDomainXml(guest.DomainXml(name));
            domain.Create();
            // What the update job does after starting a qube: wait for its agent, which comes up seconds into the boot
            // (until then libvirt says it is not connected), then run the update command with its output logged.
            var qube = new AgentGuest(name, hypervisor);
            using (var boot = new CancellationTokenSource(Boot))
                await qube.WaitReadyAsync(Boot, boot.Token);
            var logged = new List<string>();
            var output = new GuestOutputLog(GuestOutputLimits.Default, lines => { logged.AddRange(lines); return Task.CompletedTask; });
            var run = await qube.RunAsync("/bin/sh", ["-c", "echo Reading package lists; echo 'E: no network' >&2; exit 100"], Generous,
                output, CancellationToken.None);
            Assert.Equal(100, run.ExitCode);
            Assert.Equal(["Reading package lists", "E: no network"], logged);

            var agent = new GuestAgent(new LibvirtAgentTransport(name, call => hypervisor.WithDomain(name, call)), TimeSpan.FromSeconds(10));
            var echo = await agent.RunAsync("/bin/echo", ["hello from", "a real guest"], Generous);
            Assert.Equal(0, echo.ExitCode);
            Assert.Equal("hello from a real guest\n", echo.StdOut);
            Assert.Equal("", echo.StdErr);

            var failing = await agent.RunAsync("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"], Generous);
            Assert.Equal(3, failing.ExitCode);
            Assert.False(failing.Succeeded);
            Assert.Equal("out\n", failing.StdOut);
            Assert.Equal("err\n", failing.StdErr);

            // The guest's own kernel, not the host's process: the agent really is inside the domain.
            var kernel = await agent.RunAsync("/bin/cat", ["/proc/cmdline"], Generous);
            Assert.Contains("console=ttyS0 quiet panic=-1", kernel.StdOut);

            // libvirt passes the agent's refusal on as its own error, without the agent's error class.
            var missing = await Assert.ThrowsAsync<GuestAgentException>(() =>
                agent.RunAsync("/usr/bin/qubesweb-no-such-program", [], Generous));
            Assert.Equal("guest-exec", missing.Command);
            Assert.Null(missing.ErrorClass);
            Assert.StartsWith("The guest could not start /usr/bin/qubesweb-no-such-program: ", missing.Message);
            Assert.Contains("No such file or directory", missing.Message);

            var slow = await Assert.ThrowsAsync<GuestExecTimeoutException>(() =>
                agent.RunAsync("/bin/sleep", ["300"], TimeSpan.FromSeconds(1)));
            Assert.True(slow.Killed);
            Assert.Equal("after\n", (await agent.RunAsync("/bin/echo", ["after"], Generous)).StdOut);

            await agent.ShutdownAsync();
            await Eventually.UntilAsync(() => !domain.IsActive, "the guest to power off after guest-shutdown", Boot);
            Assert.Equal(DomainState.Shutoff, domain.GetState().State);
        }
        finally
        {
            RealLibvirtd.Remove(name);
        }
    }
}

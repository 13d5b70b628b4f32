// The real-hypervisor lane: a libvirt daemon running real qemu domains (software emulation), as on a host.

namespace QubesWeb.IntegrationTests.RealHypervisor;

/// <summary>Makes sure libvirtd (and virtlogd) run, for the lane's tests (see <see cref="LibvirtDaemon"/>).</summary>
public sealed class RealLibvirtd : IAsyncLifetime
{
    public const string Uri = LibvirtDaemon.Uri;

    public Task InitializeAsync() => LibvirtDaemon.EnsureRunningAsync();

    /// <summary>virsh on the lane's daemon; its output, or a failed assertion with virsh's error.</summary>
    public static async Task<string> VirshAsync(params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("virsh") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(Uri);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var err = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, $"virsh {string.Join(' ', args)} failed: {err}");
        return await output;
    }

    /// <summary>The console's hypervisor layer on the lane's daemon, opened, for tests that drive a domain through it.</summary>
    public static Hypervisor.Domains.LibvirtHypervisor OpenHypervisor()
    {
        var hypervisor = new Hypervisor.Domains.LibvirtHypervisor(
            Microsoft.Extensions.Options.Options.Create(new Hypervisor.Domains.HypervisorOptions { Uri = Uri }),
            Microsoft.Extensions.Logging.Abstractions.NullLogger<Hypervisor.Domains.LibvirtHypervisor>.Instance);
        hypervisor.Open();
        return hypervisor;
    }

    /// <summary>Removes a domain the test made, whatever state it is in.</summary>
    public static void Remove(string name) => LibvirtDaemon.Remove(name);

    public Task DisposeAsync() => Task.CompletedTask;
}

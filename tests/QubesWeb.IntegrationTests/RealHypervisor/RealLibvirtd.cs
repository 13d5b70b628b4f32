// The real-hypervisor lane: a libvirt daemon running real qemu domains (software emulation), as on a host.
using System.Diagnostics;
using QubesWeb.Hypervisor.Libvirt;

namespace QubesWeb.IntegrationTests.RealHypervisor;

/// <summary>
/// Makes sure libvirtd (and virtlogd, without which starts fail) run. There is no systemd here, so the fixture
/// starts them itself when their socket is missing; the README's test command installs them.
/// </summary>
public sealed class RealLibvirtd : IAsyncLifetime
{
    public const string Uri = "qemu:///system";
    private const string Socket = "/run/libvirt/libvirt-sock";

    public async Task InitializeAsync()
    {
        GrantKvmToItsGroup();
        if (await CanConnectAsync()) return;
        foreach (var daemon in new[] { "/usr/sbin/virtlogd", "/usr/sbin/libvirtd" })
        {
            if (!File.Exists(daemon))
                throw new InvalidOperationException($"{daemon} is missing: install libvirt-daemon-system libvirt-daemon-driver-qemu qemu-system-x86 (the README's test command does).");
            var psi = new ProcessStartInfo(daemon) { UseShellExecute = false };
            psi.ArgumentList.Add("-d");
            using var p = Process.Start(psi)!;
            await p.WaitForExitAsync();
        }
        await Eventually.UntilAsync(CanConnectAsync, $"libvirtd to answer on {Socket}", TimeSpan.FromSeconds(30));
    }

    /// <summary>
    /// Debian's udev rule gives /dev/kvm to group kvm (mode 0660), which libvirt's qemu user belongs to. Without udev
    /// the node stays root-only: qemu cannot open it, and libvirt, which still sees /dev/kvm, probes qemu's
    /// capabilities again on every define (35 s each). The fixture does what udev would have done.
    /// </summary>
    private static void GrantKvmToItsGroup()
    {
        if (!File.Exists("/dev/kvm")) return;
        foreach (var (tool, args) in new[] { ("chgrp", new[] { "kvm", "/dev/kvm" }), ("chmod", new[] { "0660", "/dev/kvm" }) })
        {
            var psi = new ProcessStartInfo(tool) { UseShellExecute = false };
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            p.WaitForExit();
        }
    }

    private static Task<bool> CanConnectAsync()
    {
        if (!File.Exists(Socket)) return Task.FromResult(false);
        try
        {
            using var c = Connect.Open(Uri);
            return Task.FromResult(c.IsAlive);
        }
        catch (LibvirtException)
        {
            return Task.FromResult(false);
        }
    }

    /// <summary>Removes a domain the test made, whatever state it is in.</summary>
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

    public static void Remove(string name)
    {
        using var c = Connect.Open(Uri);
        using var d = c.TryLookupDomainByName(name);
        if (d is null) return;
        if (d.IsActive) d.Destroy();
        d.Undefine();
    }

    public Task DisposeAsync() => Task.CompletedTask;
}

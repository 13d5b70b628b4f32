// What the lane's tests that run the console on the real libvirtd share: the console, the small guest's disk image
// (the template they import), and a started qube's guest agent.
using System.Security.Cryptography;
using QubesWeb.Hypervisor.Agent;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Updates;

namespace QubesWeb.IntegrationTests.RealHypervisor;

public static class RealLane
{
    public static readonly TimeSpan Boot = TimeSpan.FromSeconds(120);
    public static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    /// <summary>
    /// A console on the lane's libvirtd, with software emulation as the test guest uses: nested KVM on the lane's
    /// machines may fail in the boot loader's mode switches.
    /// </summary>
    public static Task<ConsoleHost> StartConsoleAsync(params string[] extraArgs) =>
        ConsoleHost.StartAsync(RealLibvirtd.Uri, demo: false, extraArgs: ["--domain-type", "qemu", .. extraArgs]);

    /// <summary>The test guest's disk image, in a folder of its own (the test deletes it).</summary>
    public static async Task<string> MakeImageAsync(TestGuest guest, string id)
    {
        var folder = Path.Combine(Path.GetTempPath(), "qubesweb-image-" + id);
        Directory.CreateDirectory(folder);
        var image = Path.Combine(folder, "qubesweb-test-guest.raw");
        await TestGuestDisk.MakeAsync(guest, image);
        return image;
    }

    public static async Task<string> Sha256Async(string path)
    {
        await using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(f));
    }

    /// <summary>The guest agent of a qube that runs, once it answers.</summary>
    public static async Task<GuestAgent> AgentOfAsync(ConsoleHost host, string name)
    {
        var hypervisor = (LibvirtHypervisor)host.Get<IHypervisor>();
        using (var boot = new CancellationTokenSource(Boot))
            await new AgentGuest(name, hypervisor).WaitReadyAsync(Boot, boot.Token);
        return new GuestAgent(new LibvirtAgentTransport(name, call => hypervisor.WithDomain(name, call)), TimeSpan.FromSeconds(10));
    }

    /// <summary>Starts the qube with the console's start job and returns its agent once it answers.</summary>
    public static async Task<GuestAgent> StartAsync(ConsoleHost host, string name)
    {
        await SucceedsAsync(host, JobKind.Start, name, timeout: Generous);
        return await AgentOfAsync(host, name);
    }
}

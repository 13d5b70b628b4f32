using System.Text.Json;

namespace QubesWeb.Hypervisor.Agent;

/// <summary>
/// A way to send QEMU guest agent commands: straight to the agent's unix socket (<see cref="UnixSocketAgentTransport"/>)
/// or through libvirt (<see cref="LibvirtAgentTransport"/>). Implementations run one command at a time and are safe to
/// share between threads.
/// </summary>
public interface IGuestAgentTransport
{
    /// <summary>
    /// Sends <c>{"execute": command, "arguments": arguments}</c> and returns the reply's <c>return</c> member.
    /// </summary>
    /// <param name="arguments">Null for none; otherwise a JSON object as a <see cref="System.Text.Json.Nodes.JsonNode"/>,
    /// a <see cref="JsonElement"/> or any object System.Text.Json serialises to one.</param>
    /// <param name="timeout">How long to wait for the reply (positive, or <see cref="Timeout.InfiniteTimeSpan"/>).</param>
    /// <exception cref="GuestAgentException">The agent answered with an error.</exception>
    /// <exception cref="GuestAgentUnavailableException">The agent cannot be reached.</exception>
    /// <exception cref="TimeoutException">No reply within <paramref name="timeout"/>.</exception>
    Task<JsonElement> ExecuteAsync(string command, object? arguments, TimeSpan timeout, CancellationToken ct = default);

    /// <summary>
    /// Sends a command the agent does not answer when it succeeds (<c>guest-shutdown</c>, <c>guest-suspend-*</c>).
    /// Returns once the command is handed over; whether the guest acts on it is only seen from the outside (e.g. the
    /// domain's lifecycle events).
    /// </summary>
    Task SendAsync(string command, object? arguments, TimeSpan timeout, CancellationToken ct = default);
}
